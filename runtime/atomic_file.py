"""The one writer of the project: every file textgen writes goes through this module.

A whole file is replaced so that readers see the old contents or the new ones, never a part: the
bytes go to a temporary file in the target's folder, are fsynced, and move over the target in one
`os.replace`, and the folder is fsynced; on any failure (including Ctrl-C) the temporary file is
removed. An append (the metrics log, a history file) goes through `append_file`. Both refuse a
target that is a symbolic link (a write through a planted link would change its victim) or
anything but a regular file (a device node such as /dev/null, a FIFO, a socket, a folder): the
check is made before anything is written and again just before the file moves into place. New
files get the permissions the user's umask gives (0666 & ~umask), like any other program's.

Every refusal and every failure is an OSError, so each caller can say what it was writing;
`describe_os_error` turns one into the reason ("disk full" for a full disk or quota). Standard
library only, so the torch-free runtime and the training side share it.
"""

from __future__ import annotations

import errno
import os
import secrets
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


class UnsafeTargetError(OSError):
    """The path to write is a symbolic link or not a regular file; nothing was written."""


def kind_of(mode: int) -> str:
    """'a FIFO', 'a character device', ... for the mode of something that is not a regular file."""
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def describe_os_error(exc: OSError) -> str:
    """The reason a write failed, for a one-line message: a full disk (or quota) is said as such."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return "disk full"
    return exc.strerror or str(exc)


def check_target(path: str | os.PathLike[str]) -> None:
    """Raise UnsafeTargetError unless `path` is missing or a regular file (not a link to one)."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if stat.S_ISREG(mode):
        return
    if stat.S_ISLNK(mode):
        raise UnsafeTargetError(errno.ELOOP, f"{path} is a symbolic link; textgen writes no file "
                                "through a link (remove the link or write elsewhere)")
    raise UnsafeTargetError(errno.EEXIST, f"{path} is {kind_of(mode)}, not a regular file; textgen "
                            "only replaces regular files (write elsewhere)")


@contextmanager
def atomic_file(path: str | os.PathLike[str]) -> Iterator[BinaryIO]:
    """A binary file to write; it becomes `path` when the block ends without an exception."""
    path = Path(path)
    check_target(path)
    fd, tmp = _create_temporary(path)
    moved = False
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        moved = _move_into_place(tmp, path)
    finally:
        if not moved:
            tmp.unlink(missing_ok=True)


def _create_temporary(path: Path) -> tuple[int, Path]:
    """A new file `.NAME.RANDOM.tmp` beside `path`, created exclusively (never an existing file or
    link) with mode 0666 so the umask decides, as for any file a program creates."""
    for _ in range(100):
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW
                         | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0), 0o666)
        except FileExistsError:
            continue
        return fd, tmp
    raise FileExistsError(errno.EEXIST, f"no free temporary name beside {path}")


def publish(finished: Path, target: Path) -> None:
    """Move a file some other writer finished (torch.onnx and torch.jit write to a path) over
    `target`, as `atomic_file` does: fsynced first, the folder after."""
    check_target(target)
    check_target(finished)
    fd = os.open(finished, os.O_RDWR | _NOFOLLOW | getattr(os, "O_NONBLOCK", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise UnsafeTargetError(errno.EEXIST, f"{finished} is not a regular file")
        os.fsync(fd)
    finally:
        os.close(fd)
    _move_into_place(finished, target)


def prepare_staging(staging: Path) -> None:
    """Clear the way for a writer that takes a path (torch.onnx, torch.jit): whatever sits at
    `staging` (a leftover, or a link planted to redirect the write) is removed, not followed."""
    try:
        mode = os.lstat(staging).st_mode
    except FileNotFoundError:
        return
    if stat.S_ISDIR(mode):
        raise UnsafeTargetError(errno.EISDIR, f"{staging} is a folder; remove it")
    staging.unlink()


def _move_into_place(tmp: Path, path: Path) -> bool:
    check_target(path)  # again: a link or node may have been put there while the bytes were written
    os.replace(tmp, path)
    fsync_directory(path.parent)  # the rename itself survives a power cut
    return True


def write_atomic(path: str | os.PathLike[str], data: bytes | bytearray | memoryview) -> None:
    """`path` holds `data`, or (after any failure) what it held before."""
    with atomic_file(path) as f:
        f.write(data)


@contextmanager
def append_file(path: str | os.PathLike[str]) -> Iterator[BinaryIO]:
    """`path` opened for appending (created with the umask's mode if missing); a link is not
    followed and anything but a regular file is refused before a byte is written."""
    path = Path(path)
    check_target(path)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | _NOFOLLOW | getattr(os, "O_NONBLOCK", 0)
                     | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0), 0o666)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENXIO):  # a link or a FIFO put there after the check
            raise UnsafeTargetError(exc.errno, f"{path} is a symbolic link or not a regular file; "
                                    "textgen appends only to regular files") from None
        raise
    opened = False  # once the file object owns the descriptor, closing it closes the descriptor
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise UnsafeTargetError(errno.EEXIST, f"{path} is {kind_of(mode)}, not a regular file; "
                                    "textgen appends only to regular files")
        os.set_blocking(fd, True)
        f = os.fdopen(fd, "ab")
        opened = True
    finally:
        if not opened:
            os.close(fd)
    with f:
        yield f


def fsync_directory(directory: Path) -> None:
    if os.name != "posix":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
