"""Replace a file so that readers see the old contents or the new ones, never a part.

The bytes go to a temporary file in the target's folder, are fsynced, and move over the target
in one `os.replace`; on any failure (including Ctrl-C) the temporary file is removed. OSError
propagates so each caller can say what it was writing. Standard library only, so the torch-free
runtime and the training side share it.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO


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
        os.replace(tmp, path)
        moved = True
    finally:
        if not moved:
            Path(tmp).unlink(missing_ok=True)
