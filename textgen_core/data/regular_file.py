"""Corpus files read through the project's one reader (runtime/regular_file.py), with its
refusals said as CorpusError: regular files only (a FIFO, device or folder is refused before it
is opened in a way that could block), size bounded before reading."""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

from runtime.atomic_file import kind_of
from runtime.regular_file import NotRegularFileError, open_regular, read_regular
from textgen_core.errors import CorpusError

__all__ = ["kind_of", "not_regular_message", "open_regular_file", "read_regular_file"]


def not_regular_message(path: Path, mode: int) -> str:
    return f"{path} is not a regular file (it is {kind_of(mode)}); give a text file"


def open_regular_file(path: Path, limit: int | None = None) -> BinaryIO:
    """`path` opened for binary reading; CorpusError if it is missing, unreadable, larger than
    `limit` bytes or anything but a regular file (FIFO, device, socket, folder)."""
    try:
        return open_regular(path, limit)
    except NotRegularFileError as exc:
        raise CorpusError(not_regular_message(path, exc.mode)) from None
    except OSError as exc:
        raise CorpusError(f"cannot read {path}: {exc.strerror or exc}") from None


def read_regular_file(path: Path, limit: int | None = None) -> bytes:
    if limit is not None:
        try:
            return read_regular(path, limit)
        except NotRegularFileError as exc:
            raise CorpusError(not_regular_message(path, exc.mode)) from None
        except OSError as exc:
            raise CorpusError(f"cannot read {path}: {exc.strerror or exc}") from None
    with open_regular_file(path) as f:
        try:
            return f.read()
        except OSError as exc:
            raise CorpusError(f"cannot read {path}: {exc.strerror or exc}") from None
