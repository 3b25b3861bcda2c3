"""The one reader of the project for files a user or another file names: regular files only, with
their size bounded before a byte is read.

A FIFO blocks `open()` until a writer appears and then may never end; a device such as /dev/zero
never ends either; a folder is not text. The path is checked with `os.stat` first; it is then
opened with `O_NONBLOCK` (a FIFO swapped in between cannot block the open, and the flag does
nothing to reads of a regular file) and the open descriptor is checked again with `os.fstat`,
which is what is actually read. Its size is compared with the caller's limit before reading, and
at most limit + 1 bytes are ever read, so a file that grows meanwhile is refused too.

Every refusal is an OSError whose `strerror` is the reason in words, so a caller's existing
`cannot read X (reason)` message stays one line. Standard library only: the torch-free runtime and
the training side share it.
"""

from __future__ import annotations

import errno
import os
import stat
from typing import BinaryIO

from runtime.atomic_file import kind_of

CONFIG_LIMIT = 1 << 20  # bytes of a settings file: a TOML config or layers file, a JSON sidecar


class NotRegularFileError(OSError):
    """The path names a FIFO, a device, a socket or a folder; it was not opened for reading."""

    mode: int = 0


class FileTooLargeError(OSError):
    """The file holds more bytes than its reader accepts; nothing was read."""


def size_text(n: int) -> str:
    for unit, size in (("GB", 1 << 30), ("MB", 1 << 20), ("kB", 1 << 10)):
        if n >= size:
            return f"{n / size:g} {unit}"
    return f"{n} bytes"


def open_regular(path: str | os.PathLike[str], limit: int | None = None) -> BinaryIO:
    """`path` opened for binary reading if it is a regular file of at most `limit` bytes."""
    before = os.stat(path)
    _require_regular(before.st_mode)
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
                 | getattr(os, "O_CLOEXEC", 0))
    handed_over = False
    try:  # the descriptor is closed on every way out but the return (Ctrl-C included)
        opened = os.fstat(fd)
        _require_regular(opened.st_mode)
        if limit is not None and opened.st_size > limit:
            raise FileTooLargeError(errno.EFBIG, _too_large(opened.st_size, limit))
        f = os.fdopen(fd, "rb")
        handed_over = True
        return f
    finally:
        if not handed_over:
            os.close(fd)


def read_regular(path: str | os.PathLike[str], limit: int) -> bytes:
    """The bytes of the regular file `path`, refused (FileTooLargeError) past `limit` bytes."""
    with open_regular(path, limit) as f:
        data = f.read(limit + 1)
    if len(data) > limit:  # it grew after the size check
        raise FileTooLargeError(errno.EFBIG, _too_large(len(data), limit, grew=True))
    return data


def read_regular_text(path: str | os.PathLike[str], limit: int, encoding: str = "utf-8") -> str:
    """`read_regular`, decoded (UnicodeDecodeError for text that is not in `encoding`); line
    endings are normalised as `open(..., newline=None)` does."""
    text = read_regular(path, limit).decode(encoding)
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _require_regular(mode: int) -> None:
    if not stat.S_ISREG(mode):
        exc = NotRegularFileError(errno.EINVAL, f"it is {kind_of(mode)}, not a regular file")
        exc.mode = mode
        raise exc


def _too_large(size: int, limit: int, grew: bool = False) -> str:
    when = "grew past" if grew else f"holds {size_text(size)}, more than"
    return f"the file {when} the {size_text(limit)} this reader accepts"
