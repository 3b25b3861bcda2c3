"""Replace a file so that readers see the old contents or the new ones, never a part.

The bytes go to a temporary file in the target's folder, are fsynced, and move over the target
in one `os.replace`, and the folder is fsynced; on any failure (including Ctrl-C) the temporary
file is removed. The one atomic writer of the project: checkpoints, token arrays, exports, the
Gutenberg cache, plots and indexes all go through it. OSError
propagates so each caller can say what it was writing. Standard library only, so the torch-free
runtime and the training side share it.
"""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO


def describe_os_error(exc: OSError) -> str:
    """The reason a write failed, for a one-line message: a full disk (or quota) is said as such."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return "disk full"
    return exc.strerror or str(exc)


@contextmanager
def atomic_file(path: str | os.PathLike[str]) -> Iterator[BinaryIO]:
    """A binary file to write; it becomes `path` when the block ends without an exception."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    moved = False
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        moved = _move_into_place(Path(tmp), path)
    finally:
        if not moved:
            Path(tmp).unlink(missing_ok=True)


def publish(finished: Path, target: Path) -> None:
    """Move a file some other writer finished (torch.onnx and torch.jit write to a path) over
    `target`, as `atomic_file` does: fsynced first, the folder after."""
    with open(finished, "rb+") as f:
        os.fsync(f.fileno())
    _move_into_place(finished, target)


def _move_into_place(tmp: Path, path: Path) -> bool:
    os.replace(tmp, path)
    fsync_directory(path.parent)  # the rename itself survives a power cut
    return True


def write_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    """`path` holds `data`, or (after any failure) what it held before."""
    with atomic_file(path) as f:
        f.write(data)


def fsync_directory(directory: Path) -> None:
    if os.name != "posix":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
