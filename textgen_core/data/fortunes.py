"""The built-in `fortunes` corpus: the system's fortune files (Debian `fortunes-min`/`fortunes`).

The files are read from `/usr/share/games/fortunes`, or the folder named by
`TEXTGEN_FORTUNES_DIR`. Every regular file directly in that folder is a fortune file, except
the `strfile` indexes (`*.dat`), the `*.u8` links Debian adds beside each file, and hidden
files; subfolders (such as `off/`) are not read. Files are taken in name order. In a fortune
file a line holding only `%` separates two fortunes; overstruck characters (`X` backspace `Y`,
the old way to print bold or underlined text) keep only what was struck last.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path

from textgen_core.errors import CorpusError

FORTUNES_DIR = Path("/usr/share/games/fortunes")
FORTUNES_ENV = "TEXTGEN_FORTUNES_DIR"
_OVERSTRIKE = re.compile(r"[^\n]\x08")


def fortunes_dir() -> Path:
    override = os.environ.get(FORTUNES_ENV)
    return Path(override).expanduser() if override else FORTUNES_DIR


def fortune_files() -> tuple[Path, ...]:
    """The fortune files, in name order; CorpusError saying what to install when there are none."""
    folder = fortunes_dir()
    install = ("install Debian's fortunes-min (or fortunes) package: sudo apt-get install "
               f"fortunes-min, or set {FORTUNES_ENV} to a folder of fortune files")
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError:
        raise CorpusError(f"--corpus fortunes: no fortune files at {folder}; {install}") from None
    files = []
    for entry in entries:
        if entry.name.startswith(".") or entry.name.endswith((".dat", ".u8")):
            continue
        try:
            st = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode):
            files.append(Path(entry.path))
    if not files:
        raise CorpusError(f"--corpus fortunes: {folder} holds no fortune files; {install}")
    return tuple(files)


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
