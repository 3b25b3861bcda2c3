"""Resolve a `--corpus` argument to text files and stream their text with validation.

A corpus is read in chunks, never whole, so that tokenizing a corpus larger than memory works.
Files are concatenated as they are, in sorted path order. Each read is one streaming pass that
checks every byte: a file must be a regular file (regular_file.py), its bytes are decoded
strictly and incrementally, line endings are normalised to "\\n" (universal newlines), and a NUL
anywhere refuses it as binary. The same pass hashes each file and compares its size and
modification time before and after, so a file that changes while it is read is an error rather
than silently mixed data; the hashes give the corpus fingerprint (`corpus_fingerprint`) a checkpoint
can record to notice a corpus edited between runs.
"""

from __future__ import annotations

import codecs
import hashlib
import io
import json
import os
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from runtime.file_kind import TAKES_TEXT, wrong_kind
from textgen_core.data.gutenberg import book_paths, is_gutenberg_spec
from textgen_core.data.regular_file import not_regular_message, open_regular_file
from textgen_core.errors import CorpusError

BUILTIN_CORPORA = ("shakespeare", "fortunes", "women-writers", "philosophers", "gutenberg:ID,...",
                   "gutenberg:author=...")
# Named corpora a checkpoint may record and a command may read unasked: they come with the
# project, so reading them can reveal nothing of the user's.
SAFE_RECORDED_CORPORA = ("shakespeare", "fortunes")
CHUNK_BYTES = 1 << 20
FORMATS = ("text", "fortunes")


@dataclass(frozen=True)
class Corpus:
    name: str
    files: tuple[Path, ...]
    encoding: str = "utf-8"
    # "text": the files as they are; "fortunes": fortune files, '%' lines between fortunes.
    format: str = "text"


@dataclass(frozen=True)
class FileDigest:
    """What one streaming pass saw of a file: its size, modification time and sha256."""

    path: Path
    size: int
    mtime_ns: int
    sha256: str


def check_encoding(encoding: str, what: str = "--encoding") -> None:
    """`encoding` must name a text codec: Python also knows bytes-to-bytes and str-to-str codecs
    (`hex_codec`, `rot13`), which cannot decode a file into text."""
    try:
        info = codecs.lookup(encoding)
    except (LookupError, TypeError, ValueError):
        raise CorpusError(f"{what} {encoding!r:.80} is not an encoding Python knows") from None
    if not getattr(info, "_is_text_encoding", True):
        raise CorpusError(f"{what} {encoding!r:.80} is not a text encoding (it turns bytes into bytes or "
                          "text into text); name the file's text encoding, e.g. utf-8 or latin-1")


def recorded_corpus(train_state: object, checkpoint: str,
                    flag: str = "--corpus") -> tuple[str | None, str | None]:
    """The corpus and encoding a checkpoint records, for a command that measures against them when
    the user names none; (None, None) when it records none. Only what is local and bounded is
    taken from a file: a Gutenberg spec (a download of up to 999,999 books from a mirror) must be
    named by the user with `flag`, the encoding must be a text codec, and a file or folder is read
    only when its files are the text the model was trained on (the recorded fingerprint matches),
    so that a checkpoint cannot name any file the user can read and have it read or quoted."""
    state = train_state if isinstance(train_state, dict) else {}
    corpus, encoding = state.get("corpus"), state.get("encoding")
    if not isinstance(corpus, str) or not corpus:
        return None, None
    if len(corpus) > 4096 or "\0" in corpus:
        raise CorpusError(f"{checkpoint} records a malformed corpus name; pass {flag}")
    if is_gutenberg_spec(corpus):
        raise CorpusError(f"{checkpoint} was trained on {corpus!r:.200}, which is downloaded from Project "
                          f"Gutenberg; a corpus a checkpoint records is never downloaded unasked: pass "
                          f"{flag} {corpus!r:.200} to measure on it")
    if encoding is not None:
        if not isinstance(encoding, str):
            raise CorpusError(f"{checkpoint} records a malformed encoding; pass --encoding")
        check_encoding(encoding, f"{checkpoint}: its recorded encoding")
    if corpus not in SAFE_RECORDED_CORPORA:
        _check_recorded_files(corpus, encoding, state.get("corpus_fingerprint"), checkpoint, flag)
    return corpus, encoding


def _check_recorded_files(corpus: str, encoding: str | None, recorded: object, checkpoint: str,
                          flag: str) -> None:
    """A recorded file or folder must hold what the checkpoint's fingerprint says it was trained on.
    Hashing the files reveals nothing (the fingerprint is all that is compared); only a match lets
    the command read them as text."""
    name_it = f"pass {flag} {corpus!r:.200} to measure on it anyway"
    if not isinstance(recorded, str):
        raise CorpusError(f"{checkpoint} records the corpus {corpus!r:.200} but not its fingerprint, so "
                          f"it is not read unasked; {name_it}")
    try:
        found = corpus_fingerprint(resolve_corpus(corpus, encoding))
    except CorpusError as exc:
        raise CorpusError(f"{checkpoint} records the corpus {corpus!r:.200}, which cannot be read here "
                          f"({exc}); pass {flag} to name the text to measure on") from None
    if found != recorded:
        raise CorpusError(f"{checkpoint} records the corpus {corpus!r:.200}, but its files are not the "
                          f"text the model was trained on (their fingerprint differs); {name_it}")


def resolve_corpus(
    spec: str, encoding: str | None = None, gutenberg_mirror: str | None = None
) -> Corpus:
    """Turn `shakespeare`, `fortunes`, a Gutenberg spec (ids, a search, a collection name), a .txt
    file, or a folder of .txt files into a Corpus. Gutenberg books are downloaded (from
    `gutenberg_mirror`) unless cached."""
    if encoding is not None:
        check_encoding(encoding)
    if spec == "shakespeare":
        from textgen_core.data.shakespeare import shakespeare_path

        return Corpus("shakespeare", (shakespeare_path(),), "utf-8")
    if spec == "fortunes":
        from textgen_core.data.fortunes import fortune_files

        return Corpus("fortunes", fortune_files(), "utf-8", format="fortunes")
    if is_gutenberg_spec(spec):
        # One cleaned file per book, in the order given, so markup can name the book.
        return Corpus(spec, book_paths(spec, gutenberg_mirror), "utf-8")
    path = Path(spec).expanduser()
    try:
        mode = os.stat(path).st_mode
    except OSError:
        builtins = ", ".join(BUILTIN_CORPORA)
        raise CorpusError(
            f"corpus not found: {spec} (give a .txt file, a folder of .txt files, or one of: "
            f"{builtins})"
        ) from None
    problem = wrong_kind(path, TAKES_TEXT)  # a model file or folder given as a corpus
    if problem is not None:
        raise CorpusError(problem)
    if stat.S_ISDIR(mode):
        # is_file() follows links and is False for FIFOs, devices and sockets.
        files = tuple(sorted(p for p in path.rglob("*.txt") if p.is_file()))
        if not files:
            raise CorpusError(f"corpus folder {path} holds no .txt files")
    elif stat.S_ISREG(mode):
        files = (path,)
    else:
        raise CorpusError(not_regular_message(path, mode) + " or a folder of .txt files")
    return Corpus(path.name or str(path), files, encoding or "utf-8")


def iter_corpus_text(
    corpus: Corpus, digests: list[FileDigest] | None = None
) -> Iterator[tuple[Path, str]]:
    """Yield (file, chunk of text) over every file, as training reads it: fortune files give
    each fortune followed by a blank line. CorpusError for unreadable, binary or undecodable
    files and for a file that changes while it is read. When `digests` is given, one
    FileDigest per file is appended as each file is finished."""
    if corpus.format == "fortunes":
        from textgen_core.data.fortunes import split_fortunes

        for path, fortune in split_fortunes(iter_file_text(corpus, digests)):
            yield path, fortune + "\n\n"
        return
    yield from iter_file_text(corpus, digests)


def iter_file_text(
    corpus: Corpus, digests: list[FileDigest] | None = None
) -> Iterator[tuple[Path, str]]:
    """The files' own decoded text, validated in one pass (see the module docstring)."""
    for path in corpus.files:
        yield from _read_file(path, corpus.encoding, digests)


def changed_while_read(path: Path) -> CorpusError:
    return CorpusError(f"{path} changed while it was being read; run again once nothing is "
                       "writing to the corpus")


def _read_file(path: Path, encoding: str, digests: list[FileDigest] | None) -> Iterator[tuple[Path, str]]:
    # UTF-16/32 text holds NUL bytes; there the decoded text is checked for NUL instead.
    wide = codecs.lookup(encoding).name.startswith(("utf-16", "utf-32"))
    decoder = io.IncrementalNewlineDecoder(codecs.getincrementaldecoder(encoding)(errors="strict"),
                                           translate=True)
    sha = hashlib.sha256()
    size = 0
    with open_regular_file(path) as f:
        before = os.fstat(f.fileno())
        while True:
            try:
                block = f.read(CHUNK_BYTES)
            except OSError as exc:
                raise CorpusError(f"cannot read {path}: {exc.strerror or exc}") from None
            if not wide and b"\x00" in block:
                raise _binary(path)
            pending = len(decoder.getstate()[0])
            try:
                text = decoder.decode(block, final=not block)
            except UnicodeDecodeError as exc:
                hint = "pass --encoding with the file's encoding (e.g. --encoding latin-1)"
                raise CorpusError(
                    f"{path} is not valid {encoding} text (undecodable byte at offset "
                    f"{size - pending + exc.start:,}); {hint}"
                ) from None
            if "\x00" in text:
                raise _binary(path)
            sha.update(block)
            size += len(block)
            if text:
                yield path, text
            if not block:
                break
        after = os.fstat(f.fileno())
    if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns) or size != before.st_size:
        raise changed_while_read(path)
    if digests is not None:
        digests.append(FileDigest(path, size, before.st_mtime_ns, sha.hexdigest()))


def _binary(path: Path) -> CorpusError:
    return CorpusError(f"{path} looks like a binary file (it contains NUL bytes), not text")


def file_digest(path: Path) -> FileDigest:
    """Size, modification time and sha256 of one regular file, read once in blocks."""
    sha = hashlib.sha256()
    size = 0
    with open_regular_file(path) as f:
        before = os.fstat(f.fileno())
        try:
            while block := f.read(CHUNK_BYTES):
                sha.update(block)
                size += len(block)
        except OSError as exc:
            raise CorpusError(f"cannot read {path}: {exc.strerror or exc}") from None
        after = os.fstat(f.fileno())
    if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns) or size != before.st_size:
        raise changed_while_read(path)
    return FileDigest(path, size, before.st_mtime_ns, sha.hexdigest())


def corpus_fingerprint(corpus: Corpus, digests: Iterable[FileDigest] | None = None) -> str:
    """A short string that changes whenever the text training would read changes: a sha256 over
    the corpus format, the encoding, and each file's size and sha256 in order (paths and
    modification times do not count, so a moved or touched corpus keeps its fingerprint).
    `digests` from a streaming pass make it free; without them every file is hashed (about a
    second per GB)."""
    if digests is None:
        digests = [file_digest(path) for path in corpus.files]
    ident = {"format": corpus.format, "encoding": codecs.lookup(corpus.encoding).name,
             "files": [[d.size, d.sha256] for d in digests]}
    return "sha256:" + hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()

