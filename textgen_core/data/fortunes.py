"""The built-in `fortunes` corpus: the system's fortune files (Debian `fortunes-min`/`fortunes`),
found as runtime/fortune_files.py says. In a fortune file a line holding only `%` separates two
fortunes; overstruck characters (`X` backspace `Y`, the old way to print bold or underlined
text) keep only what was struck last.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from runtime.fortune_files import INSTALL_HINT, find_fortune_files, fortunes_dir
from textgen_core.errors import CorpusError

_OVERSTRIKE = re.compile(r"[^\n]\x08")


def fortune_files() -> tuple[Path, ...]:
    """The fortune files, in name order; CorpusError saying what to install when there are none."""
    folder = fortunes_dir()
    files = find_fortune_files(folder)
    if files is None:
        raise CorpusError(f"--corpus fortunes: no fortune files at {folder}; {INSTALL_HINT}")
    if not files:
        raise CorpusError(f"--corpus fortunes: {folder} holds no fortune files; {INSTALL_HINT}")
    return files


def split_fortunes(chunks: Iterable[tuple[Path, str]]) -> Iterator[tuple[Path, str]]:
    """(file, fortune) for every non-empty fortune of the (file, text chunk) stream; a fortune
    never spans two files. The fortune keeps its lines, without trailing blank lines."""
    lines: list[str] = []
    tail = ""
    current: Path | None = None
    for path, chunk in chunks:
        if path != current:
            if current is not None:
                yield from _flush(current, lines if tail.rstrip() == "%" else [*lines, tail])
            lines, tail, current = [], "", path
        parts = (tail + chunk).split("\n")
        tail = parts.pop()
        for line in parts:
            if line.rstrip() == "%":
                yield from _flush(path, lines)
                lines = []
            else:
                lines.append(line)
    if current is not None:
        yield from _flush(current, lines if tail.rstrip() == "%" else [*lines, tail])


def _flush(path: Path, lines: list[str]) -> Iterator[tuple[Path, str]]:
    text = _OVERSTRIKE.sub("", "\n".join(lines)).replace("\x08", "").strip("\n")
    if text.strip():
        yield path, text
