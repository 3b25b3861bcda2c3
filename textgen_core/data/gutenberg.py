"""Project Gutenberg corpora: `--corpus gutenberg:1342,158`, a catalogue search
(`gutenberg:author=Austen,language=en`, see gutenberg_catalogue.py) and the named collections.

A book is read from `{mirror}cache/epub/{id}/pg{id}.txt`, where the mirror is `--gutenberg-mirror`,
else `TEXTGEN_GUTENBERG_MIRROR`, else the official site. It is downloaded once (gutenberg_download.py:
retries with exponential backoff, a deadline for each whole attempt, a progress bar), checked
before anything is cached (an HTML page, a file without the START and END lines, or text that is
neither UTF-8 nor declared Latin-1 is refused), and cached under `<cache>/gutenberg/`: the raw
file in `raw/`, the cleaned book in `books/` (header, footer and licence removed, see
gutenberg_clean.py) with a JSON sidecar naming the book. Every write is atomic. Once a book is
cached no request is made, so training, evaluation and markup work offline; a raw file that no
longer passes the checks (cached by an older version) is fetched again.
"""

from __future__ import annotations

import contextlib
import json
import re
from pathlib import Path
from typing import Any

from runtime.regular_file import CONFIG_LIMIT
from runtime.terminal_text import plain
from textgen_core.data.cache import cache_dir
from textgen_core.data.gutenberg_catalogue import (
    PREFIX,
    Entry,
    Query,
    check_collection,
    is_query,
    resolve_query,
    shown,
    write_cache_file,
)
from textgen_core.data.gutenberg_clean import header_field, strip_gutenberg
from textgen_core.data.gutenberg_collections import COLLECTIONS
from textgen_core.data.gutenberg_download import (
    DEFAULT_MIRROR,
    DEFAULT_RETRY,
    MIRROR_ENV,
    RetryPolicy,
    fetch,
    resolve_mirror,
)
from textgen_core.data.regular_file import read_regular_file
from textgen_core.errors import CorpusError

__all__ = ["DEFAULT_MIRROR", "MIRROR_ENV", "PREFIX", "RetryPolicy", "book_ids", "book_paths",
           "is_gutenberg_spec", "resolve_mirror"]

# Bump when the cleaning rules change: cached books are then re-cleaned from the raw files.
CLEAN_VERSION = 1
SIDECAR_FORMAT = "textgen-gutenberg-book"
# The longest Gutenberg plain-text books are ~20 MB; a mirror sending more is refused.
MAX_BOOK_BYTES = 64 << 20
# Ids have at most this many digits (the catalogue is near 80,000); longer input is refused.
MAX_ID_DIGITS = 9


def is_gutenberg_spec(spec: str) -> bool:
    return spec.startswith(PREFIX) or spec in COLLECTIONS


def book_ids(spec: str) -> tuple[int, ...]:
    """The ebook ids of `gutenberg:ID,ID,...` or of a named collection, in order (a search is
    resolved by `book_paths`, which needs the catalogue)."""
    if spec in COLLECTIONS:
        return tuple(book.id for book in COLLECTIONS[spec])
    ids: list[int] = []
    for part in spec[len(PREFIX):].split(","):
        part = part.strip()
        if not re.fullmatch(rf"[0-9]{{1,{MAX_ID_DIGITS}}}", part) or int(part) <= 0:
            raise CorpusError(
                f"--corpus {shown(spec)}: Gutenberg book ids must be positive integers separated "
                f"by commas (e.g. gutenberg:1342,158), got {shown(part, 20)!r}; an id has at most "
                f"{MAX_ID_DIGITS} digits, and a search is gutenberg:FIELD=VALUE,... (e.g. "
                "gutenberg:author=Austen,language=en)"
            )
        if int(part) in ids:
            raise CorpusError(f"--corpus {shown(spec)} names book {int(part)} twice")
        ids.append(int(part))
    return tuple(ids)


def book_url(book_id: int, mirror: str) -> str:
    return f"{mirror}cache/epub/{book_id}/pg{book_id}.txt"


def book_paths(spec: str, mirror: str | None = None, retry: RetryPolicy = DEFAULT_RETRY) -> tuple[Path, ...]:
    """Cleaned, cached text files of every book of `spec`, downloading the missing ones. A
    collection is first checked against the catalogue when one is cached; a search prints the
    books it selected before any of them is downloaded."""
    if is_query(spec):
        query, entries, total = resolve_query(spec, mirror, retry)
        ids: tuple[int, ...] = tuple(entry.id for entry in entries)
        if not all(_is_current(_books_dir() / f"pg{i}.txt") for i in ids):
            _announce(query, entries, total)
    else:
        if spec in COLLECTIONS:
            check_collection(spec)
        ids = book_ids(spec)
    return tuple(_ensure_book(book_id, mirror, retry) for book_id in ids)


def download(book_id: int, mirror: str, retry: RetryPolicy = DEFAULT_RETRY) -> bytes:
    """The raw bytes of one book, with retries; CorpusError naming the book and mirror."""
    return fetch(book_url(book_id, mirror), f"Project Gutenberg book {book_id}", mirror, MAX_BOOK_BYTES,
                 retry, label=f"pg{book_id}")


def _ensure_book(book_id: int, mirror: str | None, retry: RetryPolicy) -> Path:
    cleaned = _books_dir() / f"pg{book_id}.txt"
    if _is_current(cleaned):
        return cleaned
    raw_path = _raw_dir() / f"pg{book_id}.txt"
    resolved = resolve_mirror(mirror)
    data = _read_cached(raw_path)
    checked = None
    if data is not None:
        # A raw file cached before content was checked may fail: then it is fetched again.
        with contextlib.suppress(CorpusError):
            checked = _checked_text(book_id, data, resolved)
    if checked is None:
        data = download(book_id, resolved, retry)
        checked = _checked_text(book_id, data, resolved)  # raises before anything is cached
        write_cache_file(raw_path, data)
    raw, text = checked
    write_cache_file(cleaned, text.encode("utf-8"))
    meta = {"format": SIDECAR_FORMAT, "clean_version": CLEAN_VERSION, "id": book_id,
            "title": header_field(raw, "title"), "author": header_field(raw, "author"),
            "url": book_url(book_id, resolved), "characters": len(text)}
    write_cache_file(cleaned.with_suffix(".json"), json.dumps(meta, ensure_ascii=False).encode("utf-8"))
    return cleaned


def _checked_text(book_id: int, data: bytes, mirror: str) -> tuple[str, str]:
    """(raw text, cleaned book) of a raw file; CorpusError if it is not a Gutenberg text file."""
    book = f"Project Gutenberg book {book_id}"
    head = data[:1024].lstrip().lower()
    if head.startswith((b"<!doctype html", b"<html", b"<?xml", b"<head", b"<body")):
        raise CorpusError(f"the mirror {mirror} sent an HTML page for {book} "
                          f"({book_url(book_id, mirror)}), not the plain-text file; nothing was cached")
    raw = _decode(data, book_id)
    return raw, strip_gutenberg(raw, book)


def _read_cached(path: Path) -> bytes | None:
    try:
        return read_regular_file(path)
    except CorpusError:
        return None


def _announce(query: Query, entries: list[Entry], total: int) -> None:
    """The books a search selected, printed (stderr) before they are downloaded."""
    from rich.console import Console
    from rich.table import Table

    capped = f"the first {len(entries)} (max-books {query.max_books})" if total > len(entries) else "all"
    table = Table(title=plain(f"Project Gutenberg search {shown(query.describe())}: {total} text "
                              f"ebook(s) match, training on {capped}, in catalogue order"),
                  title_justify="left")
    for column in ("id", "title", "author", "language"):
        table.add_column(column, overflow="fold")
    for entry in entries:
        table.add_row(str(entry.id), plain(entry.display_title), plain(entry.display_authors),
                      plain(", ".join(entry.languages)))
    Console(stderr=True).print(table)


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
    return cleaned.is_file() and meta is not None and meta.get("clean_version") == CLEAN_VERSION


def _read_sidecar(path: Path) -> dict[str, Any] | None:
    try:
        meta = json.loads(read_regular_file(path.with_suffix(".json"), CONFIG_LIMIT).decode("utf-8"))
    except (CorpusError, ValueError):
        return None
    return meta if isinstance(meta, dict) and meta.get("format") == SIDECAR_FORMAT else None


def _books_dir() -> Path:
    return cache_dir() / "gutenberg" / "books"


def _raw_dir() -> Path:
    return cache_dir() / "gutenberg" / "raw"
