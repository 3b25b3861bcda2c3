"""Resolve a `--corpus` argument to text files and stream their text with validation.

A corpus is read in chunks, never whole, so that tokenizing a corpus larger than memory works.
Line endings are normalised to "\\n" (universal newlines). Files are concatenated as they are,
in sorted path order.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from textgen_core.data.gutenberg import book_paths, is_gutenberg_spec
from textgen_core.errors import CorpusError

BUILTIN_CORPORA = ("shakespeare", "women-writers", "philosophers", "gutenberg:ID,...")
CHUNK_CHARS = 1 << 20
_BINARY_PROBE_BYTES = 8192


@dataclass(frozen=True)
class Corpus:
    name: str
    files: tuple[Path, ...]
    encoding: str = "utf-8"


def resolve_corpus(
    spec: str, encoding: str | None = None, gutenberg_mirror: str | None = None
) -> Corpus:
    """Turn `shakespeare`, `gutenberg:IDS`, a Gutenberg collection name, a .txt file, or a folder
    of .txt files into a Corpus. Gutenberg books are downloaded (from `gutenberg_mirror`) unless
    cached."""
    if encoding is not None:
        try:
            codecs.lookup(encoding)
        except LookupError:
            raise CorpusError(f"--encoding {encoding!r} is not an encoding Python knows") from None
    if spec == "shakespeare":
        from textgen_core.data.shakespeare import shakespeare_path

        return Corpus("shakespeare", (shakespeare_path(),), "utf-8")
    if is_gutenberg_spec(spec):
        # One cleaned file per book, in the order given, so markup can name the book.
        return Corpus(spec, book_paths(spec, gutenberg_mirror), "utf-8")
    path = Path(spec).expanduser()
    if not path.exists():
        builtins = ", ".join(BUILTIN_CORPORA)
        raise CorpusError(
            f"corpus not found: {spec} (give a .txt file, a folder of .txt files, or one of: "
            f"{builtins})"
        )
    if path.is_dir():
        files = tuple(sorted(p for p in path.rglob("*.txt") if p.is_file()))
        if not files:
            raise CorpusError(f"corpus folder {path} holds no .txt files")
    else:
        files = (path,)
    return Corpus(path.name or str(path), files, encoding or "utf-8")


def iter_corpus_text(corpus: Corpus, chunk_chars: int = CHUNK_CHARS) -> Iterator[tuple[Path, str]]:
    """Yield (file, chunk of text) over every file; raises CorpusError for unreadable files."""
    for path in corpus.files:
        _refuse_binary(path)
        try:
            with open(path, encoding=corpus.encoding, errors="strict", newline=None) as f:
                while chunk := f.read(chunk_chars):
                    yield path, chunk
        except UnicodeDecodeError as exc:
            hint = "pass --encoding with the file's encoding (e.g. --encoding latin-1)"
            raise CorpusError(
                f"{path} is not valid {corpus.encoding} text (undecodable byte at offset "
                f"{exc.start} of a read chunk); {hint}"
            ) from None
        except OSError as exc:
            raise CorpusError(f"cannot read {path}: {exc.strerror or exc}") from None


def _refuse_binary(path: Path) -> None:
    try:
        with open(path, "rb") as f:
            head = f.read(_BINARY_PROBE_BYTES)
    except OSError as exc:
        raise CorpusError(f"cannot read {path}: {exc.strerror or exc}") from None
    # Text in any 8-bit encoding or UTF-8 has no NUL bytes; UTF-16/32 files need --encoding.
    if b"\x00" in head and not head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise CorpusError(f"{path} looks like a binary file (it contains NUL bytes), not text")
