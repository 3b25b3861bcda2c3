"""Project Gutenberg corpora: `--corpus gutenberg:1342,158` and the named collections.

A book is read from `{mirror}cache/epub/{id}/pg{id}.txt`, where the mirror is `--gutenberg-mirror`,
else `TEXTGEN_GUTENBERG_MIRROR`, else the official site. It is downloaded once (retries with
exponential backoff on timeouts, refused connections, 5xx and 429; a progress bar while it runs)
and cached under `<cache>/gutenberg/`: the raw file in `raw/`, the cleaned book in `books/`
(header, footer and licence removed, see gutenberg_clean.py) with a JSON sidecar naming the
book. Every write is atomic. Once a book is cached no request is made, so training, evaluation
and markup work offline.
"""

from __future__ import annotations

import json
import os
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from http.client import HTTPException
from pathlib import Path
from typing import Any

from runtime.atomic_file import atomic_file
from textgen_core.data.cache import cache_dir
from textgen_core.data.gutenberg_clean import header_field, strip_gutenberg
from textgen_core.data.gutenberg_collections import COLLECTIONS
from textgen_core.errors import CorpusError

PREFIX = "gutenberg:"
DEFAULT_MIRROR = "https://www.gutenberg.org/"
MIRROR_ENV = "TEXTGEN_GUTENBERG_MIRROR"
# Bump when the cleaning rules change: cached books are then re-cleaned from the raw files.
CLEAN_VERSION = 1
SIDECAR_FORMAT = "textgen-gutenberg-book"
# The longest Gutenberg plain-text books are ~20 MB; a mirror sending more is refused.
MAX_BOOK_BYTES = 64 << 20
_CHUNK = 64 << 10
USER_AGENT = "textgen (+https://pypi.org/project/textgen/)"


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 4
    backoff_s: float = 0.5  # waits 0.5, 1, 2 s between the attempts
    timeout_s: float = 30.0


def is_gutenberg_spec(spec: str) -> bool:
    return spec.startswith(PREFIX) or spec in COLLECTIONS


def book_ids(spec: str) -> tuple[int, ...]:
    """The ebook ids of `gutenberg:ID,ID,...` or of a named collection, in order."""
    if spec in COLLECTIONS:
        return tuple(book.id for book in COLLECTIONS[spec])
    ids: list[int] = []
    for part in spec[len(PREFIX):].split(","):
        part = part.strip()
        if not re.fullmatch(r"[0-9]+", part) or int(part) <= 0:
            raise CorpusError(
                f"--corpus {spec}: Gutenberg book ids must be positive integers separated by "
                f"commas (e.g. gutenberg:1342,158), got {part!r}"
            )
        if int(part) in ids:
            raise CorpusError(f"--corpus {spec} names book {int(part)} twice")
        ids.append(int(part))
    return tuple(ids)


def resolve_mirror(explicit: str | None = None) -> str:
    """`--gutenberg-mirror`, else the environment, else the official site; ends with '/'."""
    mirror = explicit or os.environ.get(MIRROR_ENV) or DEFAULT_MIRROR
    scheme = urllib.parse.urlsplit(mirror).scheme
    if scheme not in ("http", "https", "file"):
        raise CorpusError(
            f"--gutenberg-mirror must be an http://, https:// or file:// URL, got {mirror!r}"
        )
    return mirror if mirror.endswith("/") else mirror + "/"


def book_url(book_id: int, mirror: str) -> str:
    return f"{mirror}cache/epub/{book_id}/pg{book_id}.txt"


def book_paths(spec: str, mirror: str | None = None, retry: RetryPolicy = RetryPolicy()) -> tuple[Path, ...]:
    """Cleaned, cached text files of every book of `spec`, downloading the missing ones."""
    ids = book_ids(spec)
    resolved: str | None = None
    paths = []
    for book_id in ids:
        cleaned = _books_dir() / f"pg{book_id}.txt"
        if not _is_current(cleaned):
            raw = _raw_dir() / f"pg{book_id}.txt"
            if not raw.exists():
                resolved = resolved or resolve_mirror(mirror)
                _atomic_write(raw, download(book_id, resolved, retry))
            _clean_into(book_id, raw, cleaned, resolved or resolve_mirror(mirror))
        paths.append(cleaned)
    return tuple(paths)


def download(book_id: int, mirror: str, retry: RetryPolicy = RetryPolicy()) -> bytes:
    """The raw bytes of one book, with retries; CorpusError naming the book and mirror."""
    url = book_url(book_id, mirror)
    attempts = 1 if url.startswith("file:") else max(1, retry.attempts)
    reason = "no attempt made"
    for attempt in range(attempts):
        if attempt:
            time.sleep(retry.backoff_s * 2 ** (attempt - 1))
        try:
            return _get(url, book_id, retry.timeout_s)
        except urllib.error.HTTPError as exc:
            exc.close()  # it holds the open response
            if exc.code == 404 or (exc.code < 500 and exc.code != 429):
                raise CorpusError(
                    f"Project Gutenberg book {book_id} is not available from the mirror {mirror} "
                    f"(HTTP {exc.code} for {url})"
                ) from None
            reason = f"HTTP {exc.code}"
        except urllib.error.URLError as exc:
            reason = str(getattr(exc.reason, "strerror", None) or exc.reason)
            if url.startswith("file:"):
                raise CorpusError(
                    f"Project Gutenberg book {book_id} is not in the mirror {mirror} ({reason})"
                ) from None
        except (TimeoutError, ConnectionError, HTTPException, OSError) as exc:
            reason = str(exc) or type(exc).__name__
    raise CorpusError(
        f"could not download Project Gutenberg book {book_id} from the mirror {mirror} "
        f"({reason}, {attempts} attempt(s)) and it is not cached; check the network, or pass "
        f"--gutenberg-mirror / set {MIRROR_ENV}"
    )


def _get(url: str, book_id: int, timeout: float) -> bytes:
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        if total is not None and total > MAX_BOOK_BYTES:
            raise CorpusError(f"Project Gutenberg book {book_id} at {url} is {total:,} bytes, "
                              f"more than the {MAX_BOOK_BYTES:,} a book can be; refused")
        progress = Progress(TextColumn(f"[bold]pg{book_id}"), BarColumn(bar_width=28),
                            DownloadColumn(), TransferSpeedColumn(),
                            console=Console(stderr=True), transient=True)
        parts: list[bytes] = []
        size = 0
        with progress:
            task = progress.add_task("download", total=total)
            while chunk := response.read(_CHUNK):
                size += len(chunk)
                if size > MAX_BOOK_BYTES:
                    raise CorpusError(f"Project Gutenberg book {book_id} at {url} is larger than "
                                      f"{MAX_BOOK_BYTES:,} bytes; refused")
                parts.append(chunk)
                progress.update(task, advance=len(chunk))
    data = b"".join(parts)
    if total is not None and len(data) != total:
        raise ConnectionError(f"the transfer stopped after {len(data):,} of {total:,} bytes")
    return data


def _clean_into(book_id: int, raw_path: Path, cleaned: Path, mirror: str) -> None:
    raw = _decode(raw_path.read_bytes(), book_id)
    text = strip_gutenberg(raw, f"Project Gutenberg book {book_id}")
    _atomic_write(cleaned, text.encode("utf-8"))
    meta = {"format": SIDECAR_FORMAT, "clean_version": CLEAN_VERSION, "id": book_id,
            "title": header_field(raw, "title"), "author": header_field(raw, "author"),
            "url": book_url(book_id, mirror), "characters": len(text)}
    _atomic_write(cleaned.with_suffix(".json"), json.dumps(meta, ensure_ascii=False).encode("utf-8"))


def _decode(data: bytes, book_id: int) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    head = data[:20_000].decode("ascii", errors="replace")
    # Older files declare their 8-bit encoding in the header.
    if re.search(r"Character set encoding:\s*(ISO-8859-1|Latin-?1)", head, re.IGNORECASE):
        return data.decode("latin-1")
    raise CorpusError(f"Project Gutenberg book {book_id} is neither UTF-8 nor declared Latin-1 text")


def _is_current(cleaned: Path) -> bool:
    meta = _read_sidecar(cleaned)
    return cleaned.exists() and meta is not None and meta.get("clean_version") == CLEAN_VERSION


def _read_sidecar(path: Path) -> dict[str, Any] | None:
    try:
        meta = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) and meta.get("format") == SIDECAR_FORMAT else None


def _books_dir() -> Path:
    return cache_dir() / "gutenberg" / "books"


def _raw_dir() -> Path:
    return cache_dir() / "gutenberg" / "raw"


def _atomic_write(path: Path, data: bytes) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_file(path) as f:
            f.write(data)
    except OSError as exc:
        raise CorpusError(f"cannot write {path} in the cache: {exc.strerror or exc}") from None
