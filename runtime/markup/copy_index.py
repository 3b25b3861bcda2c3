"""Find the passages of a text that occur verbatim in a corpus.

The corpus (one or more source files) is held as one int32 array of code points, the sources
separated by a 0 that no query symbol equals, so no match spans two sources. Its suffix array
(suffix_array.py) is built once and cached on disk under `<cache>/copy-index/`, keyed by the
files' resolved paths, sizes and modification times, like the token arrays.

Matching computes, for every position of the text at once (numpy), the longest prefix of the
rest of the text that occurs in the corpus: a vectorised binary search for the text's place among
the sorted suffixes, then the common prefix with the two neighbours there (the longest match is
always next to that place). Windows start at 64 symbols and grow for the positions that fill
them. A greedy left-to-right walk then takes, at each position, the longest run of at least
`min_run` characters and jumps past it, as the poet seed did, without its quadratic scan.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from runtime.atomic_file import atomic_file
from runtime.errors import MarkupError
from runtime.markup.shakespeare_works import named_source
from runtime.markup.suffix_array import suffix_array
from runtime.regular_file import open_regular

INDEX_VERSION = 1
DEFAULT_MIN_RUN = 16  # see README: shorter runs often match by chance (", and the ")
_SEPARATOR = 0
_CORPUS_END = -1  # beyond the last symbol of the corpus
_TEXT_END = -2  # beyond the last symbol of the text
_TEXT_NUL = -3  # a NUL in the text must not match a separator
_WINDOW = 64
_CHUNK = 4096  # positions matched per vectorised batch (bounds memory to CHUNK x window)


@dataclass(frozen=True)
class Source:
    label: str
    start: int  # offset of its first character in the index's concatenated corpus
    length: int


@dataclass(frozen=True)
class Run:
    """text[start:start + length] occurs verbatim in `source` at `source_offset`."""

    start: int
    length: int
    source: str
    source_offset: int


@dataclass(frozen=True)
class Markup:
    text: str
    runs: tuple[Run, ...]
    min_run: int

    @property
    def copied_chars(self) -> int:
        return sum(run.length for run in self.runs)

    @property
    def copied_share(self) -> float:
        return self.copied_chars / len(self.text) if self.text else 0.0

    @property
    def longest(self) -> Run | None:
        return max(self.runs, key=lambda run: run.length, default=None)

    def summary(self) -> str:
        longest = self.longest
        line = (f"{self.copied_share:.1%} of {len(self.text):,} characters occur verbatim in the "
                f"corpus ({len(self.runs)} run(s) of >= {self.min_run} characters)")
        if longest is not None:
            line += f"; longest {longest.length} characters, from {longest.source}"
        return line


def validate_min_run(min_run: int) -> int:
    if isinstance(min_run, bool) or not isinstance(min_run, int) or min_run < 1:
        raise MarkupError(f"--min-run must be a positive integer, got {min_run!r}")
    return min_run


def text_codes(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.int32)


class CopyIndex:
    def __init__(self, codes: np.ndarray, sa: np.ndarray, sources: Sequence[Source]) -> None:
        if len(sa) != len(codes):
            raise MarkupError("the cached copy index does not fit its corpus; delete it to rebuild")
        self.codes = codes
        self.sa = sa
        self.sources = tuple(sources)
        self._starts = np.array([s.start for s in self.sources], dtype=np.int64)

    @classmethod
    def from_texts(cls, texts: Sequence[tuple[str, str]],
                   on_round: Callable[[int], None] | None = None) -> CopyIndex:
        """Index (label, text) pairs in memory."""
        codes, sources = _concatenate(texts)
        return cls(codes, suffix_array(codes, on_round), sources)

    @classmethod
    def for_files(cls, files: Sequence[Path], labels: Sequence[str], encoding: str = "utf-8",
                  cache: Path | None = None,
                  on_round: Callable[[int], None] | None = None) -> CopyIndex:
        """Index text files, loading the suffix array from `cache` (a folder) when it is there
        and writing it there when it is not."""
        texts = [(label, _read_text(path, encoding)) for path, label in zip(files, labels, strict=True)]
        codes, sources = _concatenate(texts)
        if cache is None:
            return cls(codes, suffix_array(codes, on_round), sources)
        sa_path = cache / f"{_cache_key(files, encoding)}.sa.npy"
        if sa_path.exists():
            try:
                sa = np.load(sa_path, mmap_mode="r", allow_pickle=False)
            except (OSError, ValueError):
                sa = None
            if sa is not None and len(sa) == len(codes):
                return cls(codes, sa, sources)
        sa = suffix_array(codes, on_round)
        _save_atomic(sa_path, sa)
        return cls(codes, sa, sources)

    def longest_matches(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """For each position i of `text`: the length of the longest prefix of text[i:] found in
        the corpus, and one corpus offset where it occurs."""
        query = text_codes(text)
        query[query == _SEPARATOR] = _TEXT_NUL
        lengths = np.zeros(len(query), dtype=np.int64)
        where = np.zeros(len(query), dtype=np.int64)
        if len(self.codes) == 0:
            return lengths, where
        for first in range(0, len(query), _CHUNK):
            positions = np.arange(first, min(first + _CHUNK, len(query)), dtype=np.int64)
            window = _WINDOW
            while len(positions):
                found, at = self._match(query, positions, window)
                lengths[positions], where[positions] = found, at
                # A match that fills its window may go on: look again, four times wider.
                more = (found == window) & (positions + window < len(query))
                positions, window = positions[more], window * 4
        return lengths, where

    def mark(self, text: str, min_run: int = DEFAULT_MIN_RUN) -> Markup:
        validate_min_run(min_run)
        lengths, where = self.longest_matches(text)
        runs = []
        i = 0
        while i < len(text):
            length = int(lengths[i])
            if length >= min_run:
                source = int(np.searchsorted(self._starts, where[i], side="right")) - 1
                origin = self.sources[source]
                # The built-in Shakespeare corpus is one file: name the work instead.
                label, offset = named_source(origin.label, origin.length, int(where[i]) - origin.start)
                runs.append(Run(i, length, label, offset))
                i += length
            else:
                i += 1
        return Markup(text, tuple(runs), min_run)

    def _match(self, query: np.ndarray, positions: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
        n = len(self.codes)
        pattern = _windows(query, positions, width, _TEXT_END)
        lo = np.zeros(len(positions), dtype=np.int64)
        hi = np.full(len(positions), n, dtype=np.int64)
        # Binary search for the first suffix >= the pattern (bisect_left), all rows at once.
        while True:
            active = lo < hi
            if not active.any():
                break
            mid = (lo + hi) // 2
            suffix = _windows(self.codes, np.asarray(self.sa[np.minimum(mid, n - 1)]), width, _CORPUS_END)
            _, order = _compare(pattern, suffix)
            pattern_smaller_or_prefix = order <= 0
            hi = np.where(active & pattern_smaller_or_prefix, mid, hi)
            lo = np.where(active & ~pattern_smaller_or_prefix, mid + 1, lo)
        best = np.zeros(len(positions), dtype=np.int64)
        at = np.zeros(len(positions), dtype=np.int64)
        for neighbour in (lo - 1, lo):
            valid = (neighbour >= 0) & (neighbour < n)
            offsets = np.asarray(self.sa[np.clip(neighbour, 0, n - 1)]).astype(np.int64)
            common, _ = _compare(pattern, _windows(self.codes, offsets, width, _CORPUS_END))
            common = np.where(valid, common, 0)
            better = common > best
            best = np.where(better, common, best)
            at = np.where(better, offsets, at)
        return best, at


def _windows(codes: np.ndarray, starts: np.ndarray, width: int, past_end: int) -> np.ndarray:
    """codes[s:s + width] for each start s, padded with `past_end` beyond the array."""
    index = starts.astype(np.int64)[:, None] + np.arange(width, dtype=np.int64)
    inside = index < len(codes)
    values = np.asarray(codes)[np.minimum(index, len(codes) - 1)]
    return np.where(inside, values, past_end)


def _compare(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise common prefix length and order (-1: a < b, 0: equal over the width, 1: a > b)."""
    differ = a != b
    first = differ.argmax(axis=1)
    rows = np.arange(len(a))
    any_diff = differ[rows, first]
    common = np.where(any_diff, first, a.shape[1])
    order = np.where(any_diff, np.where(a[rows, first] < b[rows, first], -1, 1), 0)
    return common, order


def _concatenate(texts: Sequence[tuple[str, str]]) -> tuple[np.ndarray, list[Source]]:
    parts: list[np.ndarray] = []
    sources = []
    offset = 0
    for label, text in texts:
        codes = text_codes(text)
        codes[codes == _SEPARATOR] = 0xFFFD  # a NUL inside a source is not a boundary
        sources.append(Source(label, offset, len(codes)))
        parts += [codes, np.array([_SEPARATOR], dtype=np.int32)]
        offset += len(codes) + 1
    codes = np.concatenate(parts[:-1]) if parts else np.zeros(0, dtype=np.int32)
    return codes, sources


def _read_text(path: Path, encoding: str) -> str:
    try:
        # Universal newlines, as the training corpus reader does, so offsets agree.
        with io.TextIOWrapper(open_regular(path), encoding=encoding, errors="strict", newline=None) as f:
            return f.read()
    except UnicodeDecodeError:
        raise MarkupError(f"{path} is not valid {encoding} text") from None
    except OSError as exc:
        raise MarkupError(f"cannot read {path}: {exc.strerror or exc}") from None


def _cache_key(files: Sequence[Path], encoding: str) -> str:
    ident = {"version": INDEX_VERSION, "encoding": encoding, "files": []}
    for path in files:
        stat = path.stat()
        ident["files"].append([str(path.resolve()), stat.st_size, stat.st_mtime_ns])
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:24]


def _save_atomic(path: Path, array: np.ndarray) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_file(path) as f:
            np.save(f, array, allow_pickle=False)
    except OSError as exc:
        raise MarkupError(f"cannot write the copy index {path}: {exc.strerror or exc}") from None
