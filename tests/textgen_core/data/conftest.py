"""A loopback Project Gutenberg mirror (127.0.0.1, a daemon thread, stopped after each test) that
serves a catalogue and books the test puts on it, and can misbehave: any status, an HTML page,
a body dripped one byte at a time."""

from __future__ import annotations

import csv
import io
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from textgen_core.data.gutenberg import MIRROR_ENV
from textgen_core.data.gutenberg_catalogue import CATALOGUE_PATH

CATALOGUE_COLUMNS = ("Text#", "Type", "Issued", "Title", "Language", "Authors", "Subjects", "LoCC",
                     "Bookshelves")


@dataclass
class Route:
    body: bytes
    status: int = 200
    content_type: str = "text/plain; charset=utf-8"
    drip_s: float = 0.0  # > 0: send one byte, then wait this long, and so on
    drip_headers: bool = True  # drip the status line and headers too, else send them at once
    headers: dict[str, str] = field(default_factory=dict)  # more headers (a redirect's Location)


def gutenberg_file(book_id: int, title: str = "", author: str = "Ann Example", body: str = "",
                   end: bool = True) -> bytes:
    """A file shaped like gutenberg.org's cache/epub/{id}/pg{id}.txt (CRLF, header, markers,
    licence)."""
    title = title or f"Tale Number {book_id}"
    body = body or (f"CHAPTER I. {title}\n\n" + f"It was a quiet morning in book {book_id}. " * 30 + "\n")
    text = (f"The Project Gutenberg eBook of {title}\n\nTitle: {title}\n\nAuthor: {author}\n\n"
            f"*** START OF THE PROJECT GUTENBERG EBOOK {book_id} ***\n\n{body}")
    if end:
        text += (f"\n*** END OF THE PROJECT GUTENBERG EBOOK {book_id} ***\n\n"
                 "START: FULL LICENSE\nTHE FULL PROJECT GUTENBERG LICENSE\n" + "Section 1. " * 40)
    return text.replace("\n", "\r\n").encode("utf-8")


def catalogue_csv(rows: list[tuple]) -> bytes:
    """A pg_catalog.csv: rows of (id, type, title, language, authors[, subjects, bookshelves])."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CATALOGUE_COLUMNS)
    for row in rows:
        ident, kind, title, language, authors, *rest = row
        subjects, shelves = [*rest, "", ""][:2]
        writer.writerow([ident, kind, "2000-01-01", title, language, authors, subjects, "PR", shelves])
    return out.getvalue().encode("utf-8")


@dataclass
class LoopbackMirror:
    url: str = ""
    routes: dict[str, Route] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)

    def add_book(self, book_id: int, **kwargs: object) -> bytes:
        """Serve a well-formed book (gutenberg_file's arguments); returns its bytes."""
        data = gutenberg_file(book_id, **kwargs)  # type: ignore[arg-type]
        self.serve_book(book_id, data)
        return data

    def serve_book(self, book_id: int, body: bytes, **route: object) -> None:
        """Serve `body` as book `book_id`, with Route's other fields (status, drip_s, ...)."""
        self.routes[f"/cache/epub/{book_id}/pg{book_id}.txt"] = Route(body, **route)  # type: ignore[arg-type]

    def set_catalogue(self, rows: list[tuple]) -> None:
        self.routes["/" + CATALOGUE_PATH] = Route(catalogue_csv(rows))

    def serve_catalogue(self, body: bytes, **route: object) -> None:
        self.routes["/" + CATALOGUE_PATH] = Route(body, **route)  # type: ignore[arg-type]

    def book_requests(self) -> list[str]:
        return [r for r in self.requests if r.startswith("/cache/epub/") and "/feeds/" not in r]


@pytest.fixture
def pg_mirror(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LoopbackMirror]:
    """A loopback mirror and an empty private cache (TEXTGEN_CACHE) for one test."""
    monkeypatch.setenv("TEXTGEN_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv(MIRROR_ENV, raising=False)
    state = LoopbackMirror()
    stop = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.requests.append(self.path)
            route = state.routes.get(self.path)
            if route is None:
                self.send_error(404)
                return
            if route.drip_s > 0:
                self._drip(route)
                return
            self.send_response(route.status)
            self.send_header("Content-Type", route.content_type)
            self.send_header("Content-Length", str(len(route.body)))
            for name, value in route.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(route.body)

        def _drip(self, route: Route) -> None:
            head = (f"HTTP/1.1 {route.status} OK\r\nContent-Type: {route.content_type}\r\n"
                    f"Content-Length: {len(route.body)}\r\n\r\n").encode()
            try:
                if not route.drip_headers:
                    self.wfile.write(head)
                    self.wfile.flush()
                    head = b""
                for i in range(len(head) + len(route.body)):
                    if stop.wait(route.drip_s):
                        return
                    byte = head[i : i + 1] if i < len(head) else route.body[i - len(head) : i - len(head) + 1]
                    self.wfile.write(byte)
                    self.wfile.flush()
            except OSError:
                return  # the client gave up: what a deadline is for

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/"
    yield state
    stop.set()
    server.shutdown()
    server.server_close()


@pytest.fixture
def dead_mirror_url() -> str:
    """A loopback URL where nothing listens (connections are refused at once)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    port = server.server_address[1]
    server.server_close()
    return f"http://127.0.0.1:{port}/"
