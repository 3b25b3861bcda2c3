"""Open a file for reading only if it is a regular file, so that no path can make a read hang.

A FIFO blocks `open()` until a writer appears and then never ends; a device such as /dev/zero
never ends either. The path is checked with `os.stat` first; it is then opened with
`O_NONBLOCK` (a FIFO swapped in between cannot block the open, and the flag does nothing to reads
of a regular file) and the open descriptor is checked again with `os.fstat`, which is what is
actually read.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO

from textgen_core.errors import CorpusError

_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def kind_of(mode: int) -> str:
    """'a FIFO', 'a character device', ... for the mode of something that is not a regular file."""
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def not_regular_message(path: Path, mode: int) -> str:
    return f"{path} is not a regular file (it is {kind_of(mode)}); give a text file"


def open_regular_file(path: Path) -> BinaryIO:
    """`path` opened for binary reading; CorpusError if it is missing, unreadable or anything
    but a regular file (FIFO, device, socket, folder)."""
    try:
        before = os.stat(path)
        if not stat.S_ISREG(before.st_mode):
            raise CorpusError(not_regular_message(path, before.st_mode))
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except OSError as exc:
        raise CorpusError(f"cannot read {path}: {exc.strerror or exc}") from None
    handed_over = False
    try:  # the descriptor is closed on every way out but the return (Ctrl-C included)
        opened = os.fstat(fd)
        if not stat.S_ISREG(opened.st_mode):
            raise CorpusError(not_regular_message(path, opened.st_mode))
        f = os.fdopen(fd, "rb")
        handed_over = True
        return f
    finally:
        if not handed_over:
            os.close(fd)


def read_regular_file(path: Path) -> bytes:
    with open_regular_file(path) as f:
        try:
            return f.read()
        except OSError as exc:
            raise CorpusError(f"cannot read {path}: {exc.strerror or exc}") from None
