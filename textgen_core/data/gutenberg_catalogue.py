"""Project Gutenberg's catalogue: search it, turn a search into ebook ids, check the collections.

The catalogue is the mirror's `cache/epub/feeds/pg_catalog.csv`: one row per ebook with the
columns Text#, Type, Issued, Title, Language, Authors, Subjects, LoCC, Bookshelves. It is fetched
with the same mirror, retry and deadline rules as a book (gutenberg_download.py), checked to be
that CSV before it is cached, and cached as `<cache>/gutenberg/pg_catalog.csv` with a JSON
sidecar. A cached catalogue is used for `MAX_AGE_S` (7 days); then the next search fetches it
again (`--refresh` forces that). If the refetch fails, the cached copy is used and the next try
waits `RETRY_AFTER_S` (an hour), so searches and training go on offline.

A search (`gutenberg:author=Austen,language=en`) keeps the text ebooks (Type "Text") whose
fields match every condition: `author`, `title` and `subject` (Subjects or Bookshelves) as
case- and accent-insensitive substrings, `language` as one of the ebook's language codes. The
matches keep catalogue order and are capped at `max-books` (default `DEFAULT_MAX_BOOKS`).
"""

from __future__ import annotations

import csv
import io
import json
import re
import stat
import time
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runtime.atomic_file import describe_os_error, write_atomic
from runtime.regular_file import CONFIG_LIMIT
from runtime.terminal_text import sanitize
from textgen_core.data.cache import cache_dir
from textgen_core.data.gutenberg_collections import COLLECTIONS, Book
from textgen_core.data.gutenberg_download import DEFAULT_RETRY, RetryPolicy, fetch, resolve_mirror
from textgen_core.data.regular_file import read_regular_file
from textgen_core.errors import CorpusError

CATALOGUE_PATH = "cache/epub/feeds/pg_catalog.csv"
SIDECAR_FORMAT = "textgen-gutenberg-catalogue"
MAX_AGE_S = 7 * 24 * 3600
RETRY_AFTER_S = 3600
# The real catalogue is ~15 MB and ~75,000 rows; a mirror sending more than these is refused, and
# each kept field is cut at MAX_FIELD_CHARS, so a parsed catalogue holds at most a few times its
# file's size (a 255 MB file of tiny rows once parsed to 5.6 GB).
MAX_CATALOGUE_BYTES = 64 << 20
MAX_CATALOGUE_ROWS = 500_000
MAX_FIELD_CHARS = 2_000
REQUIRED_COLUMNS = ("Text#", "Type", "Title", "Language", "Authors")
SEARCH_FIELDS = ("author", "title", "language", "subject")
MAX_BOOKS_FIELD = "max-books"
DEFAULT_MAX_BOOKS = 20
PREFIX = "gutenberg:"
WHAT = "the Project Gutenberg catalogue"


@dataclass(frozen=True)
class Entry:
    id: int
    type: str
    title: str
    languages: tuple[str, ...]
    authors: str
    subjects: str
    bookshelves: str

    @property
    def display_title(self) -> str:
        return sanitize(" ".join(self.title.split()))

    @property
    def display_authors(self) -> str:
        return sanitize(" ".join(self.authors.split()))


@dataclass(frozen=True)
class Query:
    author: str | None = None
    title: str | None = None
    language: str | None = None
    subject: str | None = None
    max_books: int = DEFAULT_MAX_BOOKS

    def describe(self) -> str:
        return ", ".join(f"{name}={getattr(self, name)}" for name in SEARCH_FIELDS
                         if getattr(self, name) is not None)

    def matches(self, entry: Entry) -> bool:
        if entry.type.casefold() != "text":
            return False
        if self.author is not None and _fold(self.author) not in _fold(entry.authors):
            return False
        if self.title is not None and _fold(self.title) not in _fold(entry.title):
            return False
        if self.language is not None and _fold(self.language) not in entry.languages:
            return False
        return self.subject is None or _fold(self.subject) in _fold(entry.subjects + " " + entry.bookshelves)


def shown(text: str, limit: int = 60) -> str:
    """User-given text for an error line: escapes neutralised, long input shortened."""
    text = sanitize(text)
    return text if len(text) <= limit else text[:limit] + "..."


def is_query(spec: str) -> bool:
    return spec.startswith(PREFIX) and "=" in spec


def parse_query(spec: str) -> Query:
    """`gutenberg:FIELD=VALUE,...` as a Query; CorpusError naming the bad part."""
    label = f"--corpus {shown(spec)}"
    fields: dict[str, str] = {}
    for part in spec[len(PREFIX):].split(","):
        key, sep, value = (s.strip() for s in part.partition("="))
        key = key.lower()
        if not sep:
            raise CorpusError(f"{label}: a Gutenberg search is FIELD=VALUE,... (fields: "
                              f"{', '.join(SEARCH_FIELDS)}, {MAX_BOOKS_FIELD}) and cannot mix in "
                              f"ebook ids; got {shown(part)!r}")
        if key not in (*SEARCH_FIELDS, MAX_BOOKS_FIELD):
            raise CorpusError(f"{label}: unknown search field {shown(key)!r}; fields: "
                              f"{', '.join(SEARCH_FIELDS)}, {MAX_BOOKS_FIELD}")
        if key in fields:
            raise CorpusError(f"{label} gives {key} twice")
        if not value:
            raise CorpusError(f"{label}: {key} has no value")
        fields[key] = value
    max_books = fields.pop(MAX_BOOKS_FIELD, None)
    if not fields:
        raise CorpusError(f"{label}: a Gutenberg search needs at least one of "
                          f"{', '.join(SEARCH_FIELDS)}")
    if max_books is None:
        return Query(**fields)
    return Query(**fields, max_books=parse_max_books(max_books, f"{label}: {MAX_BOOKS_FIELD}"))


def parse_max_books(value: str | int, label: str = "--max-books") -> int:
    text = str(value)
    if not re.fullmatch(r"[0-9]{1,6}", text) or int(text) <= 0:
        raise CorpusError(f"{label} must be a positive integer (at most 999999), got {shown(text)}")
    return int(text)


def with_max_books(spec: str | None, max_books: int | None) -> str | None:
    """`--corpus SPEC --max-books N` as the one corpus spec a checkpoint records."""
    if max_books is None:
        return spec
    if spec is None or not is_query(spec):
        raise CorpusError("--max-books caps a Project Gutenberg search; use it with "
                          "--corpus \"gutenberg:author=...,language=...\"")
    parse_query(spec)
    if re.search(rf"(?:^|,)\s*{MAX_BOOKS_FIELD}\s*=", spec[len(PREFIX):], re.IGNORECASE):
        raise CorpusError(f"--corpus {shown(spec)} already sets {MAX_BOOKS_FIELD}; drop --max-books")
    return f"{spec},{MAX_BOOKS_FIELD}={parse_max_books(max_books)}"


def search(entries: Iterable[Entry], query: Query) -> list[Entry]:
    """Every text ebook matching `query`, in catalogue order (no cap)."""
    return [entry for entry in entries if query.matches(entry)]


def resolve_query(spec: str, mirror: str | None = None,
                  retry: RetryPolicy = DEFAULT_RETRY) -> tuple[Query, list[Entry], int]:
    """The query of `spec`, its first `max_books` matches and how many matched in all."""
    query = parse_query(spec)
    found = search(load_catalogue(mirror, retry), query)
    if not found:
        raise CorpusError(f"no text ebook in {WHAT} matches {shown(query.describe())}; try "
                          "python -m textgen_core.corpus search with fewer conditions")
    return query, found[: query.max_books], len(found)


# --- the cached catalogue -------------------------------------------------------------------

def catalogue_url(mirror: str) -> str:
    return f"{mirror}{CATALOGUE_PATH}"


def load_catalogue(mirror: str | None = None, retry: RetryPolicy = DEFAULT_RETRY,
                   refresh: bool = False) -> list[Entry]:
    """The catalogue, from the cache while it is fresh, else from the mirror (see the module
    docstring for the age and offline rules)."""
    path = catalogue_file()
    meta = _read_meta(path)
    cached = meta is not None and _is_regular(path)
    if cached and not refresh and time.time() < meta["next_check"]:
        return _parse_cached(path)
    resolved = resolve_mirror(mirror)
    try:
        data = fetch(catalogue_url(resolved), WHAT, resolved, MAX_CATALOGUE_BYTES, retry,
                     check=lambda data, _: _check_csv(data, catalogue_url(resolved)),
                     label="pg_catalog.csv")
    except CorpusError:
        if not cached or refresh:
            raise
        _write_meta(path, {**meta, "next_check": time.time() + RETRY_AFTER_S})
        return _parse_cached(path)
    entries = parse_catalogue(data, catalogue_url(resolved))
    write_cache_file(path, data)
    _remember(path, entries)  # a later search in this process reuses it, not a parse of the file
    _write_meta(path, {"format": SIDECAR_FORMAT, "url": catalogue_url(resolved),
                       "fetched_at": time.time(), "next_check": time.time() + MAX_AGE_S,
                       "ebooks": len(entries)})
    return entries


def cached_catalogue() -> list[Entry] | None:
    """The cached catalogue however old, or None; never touches the network."""
    path = catalogue_file()
    if _read_meta(path) is None or not _is_regular(path):
        return None
    return _parse_cached(path)


def catalogue_file() -> Path:
    return cache_dir() / "gutenberg" / "pg_catalog.csv"


_memo: dict[str, Any] = {}


def _parse_cached(path: Path) -> list[Entry]:
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    if _memo.get("key") != key:  # train resolves a corpus twice; parse the CSV once
        _memo.clear()  # the old parse is dropped before the new one is made
        _memo["entries"] = parse_catalogue(read_regular_file(path, MAX_CATALOGUE_BYTES), str(path))
        _memo["key"] = key
    return _memo["entries"]


def _remember(path: Path, entries: list[Entry]) -> None:
    try:
        st = path.stat()
    except OSError:
        return
    _memo.clear()
    _memo.update(key=(str(path), st.st_size, st.st_mtime_ns), entries=entries)


def _field(row: list[str], column: dict[str, int], name: str) -> str:
    return row[column[name]][:MAX_FIELD_CHARS] if name in column else ""


def _check_csv(data: bytes, source: str) -> None:
    """Refuse a page that is not the CSV (its header) at once; the one full parse follows, and
    refuses the rest before anything is cached."""
    parse_catalogue(data.split(b"\n", 1)[0], source)


def parse_catalogue(data: bytes, source: str) -> list[Entry]:
    """Rows of a pg_catalog.csv; CorpusError (one line) if `data` is not that CSV."""
    not_csv = f"{source} is not Project Gutenberg's CSV catalogue"
    # Decoded as it is read (no second, decoded copy of the whole file) and cut field by field.
    stream = io.TextIOWrapper(io.BytesIO(data), encoding="utf-8-sig", errors="strict", newline="")
    reader = csv.reader(stream)
    try:
        header = next(reader, None)
        if header is None or not set(REQUIRED_COLUMNS) <= set(header):
            first = data[:200].decode("utf-8", errors="replace").split("\n", 1)[0]
            raise CorpusError(f"{not_csv} (its first line is {shown(first, 50)!r}, expected columns "
                              f"{', '.join(REQUIRED_COLUMNS)}, ...)")
        column = {name: header.index(name) for name in (*REQUIRED_COLUMNS, "Subjects", "Bookshelves")
                  if name in header}
        entries = []
        for row in reader:
            if len(row) != len(header):
                continue  # a blank or torn line
            ident = row[column["Text#"]].strip()
            if not re.fullmatch(r"[0-9]{1,9}", ident):
                continue
            if len(entries) == MAX_CATALOGUE_ROWS:
                raise CorpusError(f"{not_csv} (it lists more than {MAX_CATALOGUE_ROWS:,} ebooks; the "
                                  "real one lists about 75,000)")
            languages = tuple(_fold(code) for code in re.split(r"[;,]", _field(row, column, "Language"))[:16]
                              if code.strip())
            entries.append(Entry(int(ident), _field(row, column, "Type").strip(),
                                 _field(row, column, "Title").strip(), languages,
                                 _field(row, column, "Authors").strip(), _field(row, column, "Subjects"),
                                 _field(row, column, "Bookshelves")))
    except csv.Error as exc:
        raise CorpusError(f"{not_csv} (line {reader.line_num}: {exc})") from None
    except UnicodeDecodeError:
        raise CorpusError(f"{not_csv} (it is not UTF-8 text)") from None
    return entries


def _read_meta(path: Path) -> dict[str, Any] | None:
    try:
        meta = json.loads(read_regular_file(path.with_suffix(".json"), CONFIG_LIMIT).decode("utf-8"))
    except (CorpusError, ValueError):
        return None
    ok = isinstance(meta, dict) and meta.get("format") == SIDECAR_FORMAT
    return meta if ok and isinstance(meta.get("next_check"), (int, float)) else None


def _is_regular(path: Path) -> bool:
    try:
        return stat.S_ISREG(path.stat().st_mode)
    except OSError:
        return False


def write_cache_file(path: Path, data: bytes) -> None:
    """A file of the Gutenberg cache (catalogue, raw and cleaned books), written atomically."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, data)
    except OSError as exc:
        raise CorpusError(f"cannot write {path} in the cache: {describe_os_error(exc)}") from None


def _write_meta(path: Path, meta: dict[str, Any]) -> None:
    write_cache_file(path.with_suffix(".json"), json.dumps(meta).encode("utf-8"))


# --- checking the named collections ---------------------------------------------------------

_STOP_WORDS = {"the", "a", "an", "of", "and", "on", "in", "to"}
_ROMAN = {r: str(i) for i, r in enumerate(
    ("i", "ii", "iii", "iv", "v", "vi", "vii", "viii", "ix", "x",
     "xi", "xii", "xiii", "xiv", "xv", "xvi", "xvii", "xviii", "xix", "xx"), 1)}
_ALIASES = {"vol": "volume", "&": "and"}


def _fold(text: str) -> str:
    """Casefolded, accents removed, whitespace collapsed."""
    decomposed = unicodedata.normalize("NFKD", text)
    return " ".join("".join(c for c in decomposed if not unicodedata.combining(c)).casefold().split())


def _title_words(title: str) -> list[str]:
    """The title's words in order, normalised for comparison (see `book_mismatch`)."""
    words = []
    for word in re.findall(r"\w+|&", _fold(title).replace("'s", "").replace("\u2019s", "")):
        word = _ALIASES.get(word, _ROMAN.get(word, word))
        if len(word) > 3 and word.endswith("s"):
            word = word[:-1]
        if word not in _STOP_WORDS:
            words.append(word)
    return words


def _titles_agree(ours: str, catalogue: str) -> bool:
    mine, theirs = _title_words(ours), _title_words(catalogue)
    numbers = [w for w in mine if w.isdigit()]
    listed = [w for w in theirs if w.isdigit()]
    starts = range(len(listed) - len(numbers) + 1)
    in_order = any(listed[i : i + len(numbers)] == numbers for i in starts)
    return set(mine) <= set(theirs) and in_order


def book_mismatch(book: Book, entry: Entry | None) -> str | None:
    """Why the catalogue's entry does not describe `book`, or None when it does.

    The catalogue's title must contain every word of the book's title (ignoring case, accents,
    a few short words, plural s, "Vol." for "Volume" and roman numerals for digits) and its
    numbers in the same order ("Vol. 3 of 3" is not "Volume 2 (of 3)"), so a subtitle may follow;
    the book's author's surname must be among the catalogue's authors."""
    if entry is None:
        return "is not in the catalogue"
    catalogue = f"{entry.display_title!r} by {entry.display_authors or 'no author'}"
    if entry.type.casefold() != "text":
        return f"is a {shown(entry.type, 20)} item in the catalogue ({catalogue}), not a text"
    surname = _fold(book.author).split()[-1]
    if not _titles_agree(book.title, entry.title) or surname not in re.findall(r"\w+", _fold(entry.authors)):
        return f"is {catalogue} in the catalogue"
    return None


def collection_mismatches(name: str, entries: Iterable[Entry]) -> list[tuple[Book, str]]:
    """(book, what the catalogue says) for every book of collection `name` it does not confirm."""
    by_id = {entry.id: entry for entry in entries}
    found = []
    for book in COLLECTIONS[name]:
        why = book_mismatch(book, by_id.get(book.id))
        if why is not None:
            found.append((book, why))
    return found


def mismatch_error(name: str, mismatches: list[tuple[Book, str]]) -> CorpusError:
    book, why = mismatches[0]
    more = ""
    if len(mismatches) > 1:
        more = f" (and {len(mismatches) - 1} more: {', '.join(str(b.id) for b, _ in mismatches[1:])})"
    return CorpusError(
        f"collection {name}: book {book.id}, {book.title!r} by {book.author}, {why}{more}; "
        "the collection names the wrong ebook (see python -m textgen_core.corpus check " + name + ")"
    )


def check_collection(name: str) -> None:
    """Raise CorpusError naming the first book of collection `name` that the cached catalogue
    contradicts; nothing happens when no catalogue is cached (no network is used)."""
    entries = cached_catalogue()
    if entries is not None:
        mismatches = collection_mismatches(name, entries)
        if mismatches:
            raise mismatch_error(name, mismatches)
