"""Fetch one file from a Project Gutenberg mirror: retries, a deadline, a size cap, a progress bar.

Each attempt must finish within `RetryPolicy.timeout_s`, connection, headers and body together:
urllib's own timeout bounds each socket operation only, so a server sending one byte every few
seconds would keep a transfer going for ever. A timer shuts the attempt's sockets down when the
deadline passes, which ends any read in progress. Timeouts, refused connections, HTTP 5xx and 429
are retried with exponential backoff; other HTTP errors are not.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from http.client import HTTPException
from typing import Any

from textgen_core.errors import CorpusError

DEFAULT_MIRROR = "https://www.gutenberg.org/"
MIRROR_ENV = "TEXTGEN_GUTENBERG_MIRROR"
USER_AGENT = "textgen (+https://pypi.org/project/textgen/)"
_CHUNK = 64 << 10


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 4
    backoff_s: float = 0.5  # waits 0.5, 1, 2 s between the attempts
    timeout_s: float = 30.0  # for each whole attempt: connect, headers and body


DEFAULT_RETRY = RetryPolicy()


def resolve_mirror(explicit: str | None = None) -> str:
    """`--gutenberg-mirror`, else the environment, else the official site; ends with '/'."""
    mirror = explicit or os.environ.get(MIRROR_ENV) or DEFAULT_MIRROR
    scheme = urllib.parse.urlsplit(mirror).scheme
    if scheme not in ("http", "https", "file"):
        raise CorpusError(
            f"--gutenberg-mirror must be an http://, https:// or file:// URL, got {mirror!r}"
        )
    return mirror if mirror.endswith("/") else mirror + "/"


class _Deadline:
    """Shuts down every socket registered with it once `seconds` have passed."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def register(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.append(sock)
            if self.expired:
                _shutdown(sock)

    def cancel(self) -> None:
        self._timer.cancel()

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for sock in self._sockets:
                _shutdown(sock)


def _shutdown(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already closed: nothing left to interrupt
        sock.shutdown(socket.SHUT_RDWR)


def _opener(deadline: _Deadline) -> urllib.request.OpenerDirector:
    def create_connection(*args: Any, **kwargs: Any) -> socket.socket:
        sock = socket.create_connection(*args, **kwargs)
        deadline.register(sock)  # before a TLS handshake, which could be dripped too
        return sock

    class Connection(http.client.HTTPConnection):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._create_connection = create_connection

    class SecureConnection(http.client.HTTPSConnection):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._create_connection = create_connection

        def connect(self) -> None:
            super().connect()
            deadline.register(self.sock)  # the TLS socket that replaced the plain one

    class Handler(urllib.request.HTTPHandler):
        def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
            return self.do_open(Connection, req)

    class SecureHandler(urllib.request.HTTPSHandler):
        def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
            return self.do_open(SecureConnection, req, context=self._context)

    return urllib.request.build_opener(Handler, SecureHandler, HTTPOnlyRedirects)


class HTTPOnlyRedirects(urllib.request.HTTPRedirectHandler):
    """Redirects from a mirror lead to http(s) only: urllib would follow one to ftp://, whose
    transfer runs outside the attempt's deadline (and a mirror has no reason to send one)."""

    max_redirections = 5

    def redirect_request(self, req: urllib.request.Request, fp: Any, code: int, msg: str, headers: Any,
                         newurl: str) -> urllib.request.Request | None:
        scheme = urllib.parse.urlsplit(newurl).scheme.lower()
        if scheme not in ("http", "https"):
            fp.close()
            raise CorpusError(f"the mirror redirected {req.full_url} to {newurl[:200]}, which is not an "
                              "http:// or https:// URL; refused")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def fetch(url: str, what: str, mirror: str, max_bytes: int, retry: RetryPolicy = DEFAULT_RETRY,
          check: Callable[[bytes, str], None] | None = None, label: str = "") -> bytes:
    """The bytes at `url` (`what` names it in errors, e.g. "Project Gutenberg book 12"), with
    retries; `check(data, content_type)` raises CorpusError for content that is not what was
    asked for (never retried). CorpusError naming `what` and the mirror on failure."""
    attempts = 1 if url.startswith("file:") else max(1, retry.attempts)
    reason = "no attempt made"
    for attempt in range(attempts):
        if attempt:
            time.sleep(retry.backoff_s * 2 ** (attempt - 1))
        deadline = _Deadline(retry.timeout_s)
        try:
            data, content_type = _get(url, what, retry.timeout_s, max_bytes, deadline, label)
        except urllib.error.HTTPError as exc:
            exc.close()  # it holds the open response
            if exc.code < 500 and exc.code != 429:
                raise CorpusError(f"{what} is not available from the mirror {mirror} "
                                  f"(HTTP {exc.code} for {url})") from None
            reason = f"HTTP {exc.code}"
            continue
        except urllib.error.URLError as exc:
            reason = str(getattr(exc.reason, "strerror", None) or exc.reason)
            if url.startswith("file:"):
                raise CorpusError(f"{what} is not in the mirror {mirror} ({reason})") from None
            if deadline.expired:
                reason = f"no answer within {retry.timeout_s:g} s"
            continue
        except (TimeoutError, ConnectionError, HTTPException, OSError) as exc:
            reason = str(exc) or type(exc).__name__
            if deadline.expired:
                reason = f"the transfer took longer than {retry.timeout_s:g} s"
            continue
        finally:
            deadline.cancel()
        if check is not None:
            check(data, content_type)
        return data
    raise CorpusError(
        f"could not download {what} from the mirror {mirror} ({reason}, {attempts} attempt(s)) "
        f"and it is not cached; check the network, or pass --gutenberg-mirror / set {MIRROR_ENV}"
    )


def _get(url: str, what: str, timeout: float, max_bytes: int, deadline: _Deadline,
         label: str) -> tuple[bytes, str]:
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, RenderableColumn, TransferSpeedColumn

    from runtime.terminal_text import plain

    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    with _opener(deadline).open(request, timeout=timeout) as response:
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() and len(length) < 19 else None
        if total is not None and total > max_bytes:
            raise CorpusError(f"{what} at {url} is {total:,} bytes, more than the {max_bytes:,} "
                              "it can be; refused")
        content_type = response.headers.get("Content-Type", "")
        # a book's title comes from the catalogue: shown filtered, as plain text
        progress = Progress(RenderableColumn(plain(label or what, style="bold")), BarColumn(bar_width=28),
                            DownloadColumn(), TransferSpeedColumn(),
                            console=Console(stderr=True), transient=True)
        parts: list[bytes] = []
        size = 0
        with progress:
            task = progress.add_task("download", total=total)
            # read1 returns what has arrived instead of waiting for a whole chunk.
            read = getattr(response, "read1", response.read)
            while chunk := read(_CHUNK):
                size += len(chunk)
                if size > max_bytes:
                    raise CorpusError(f"{what} at {url} is larger than {max_bytes:,} bytes; refused")
                parts.append(chunk)
                progress.update(task, advance=len(chunk))
    if deadline.expired:
        raise TimeoutError(f"the transfer took longer than {timeout:g} s")
    data = b"".join(parts)
    if total is not None and len(data) != total:
        raise ConnectionError(f"the transfer stopped after {len(data):,} of {total:,} bytes")
    return data, content_type
