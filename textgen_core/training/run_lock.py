"""One training run per `--out`: a run holds an exclusive lock on `<out>.lock` from before it
checks the path until its last save, so a second run on the same path (fresh or `--resume`) stops
with one line naming the process that holds it, before it reads, cleans up or writes anything.

The lock is `flock` on an open file, so the kernel drops it when its process dies (kill -9
included): a stale lock file never blocks a later run. The file holds the owner's process id for
the message. Only rank 0 of a `torchrun` job takes it; the other ranks never write.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from runtime.atomic_file import describe_os_error
from textgen_core.errors import ConfigError
from textgen_core.training import run_rules


def lock_path(out: Path) -> Path:
    return out.with_name(out.name + ".lock")


@contextmanager
def hold_out(out: Path, fresh: bool, overwrite: bool) -> Iterator[None]:
    """Hold `out` for this run; raises ConfigError when another process holds it. A fresh run
    checks again, under the lock, that it replaces no checkpoint unless `overwrite`: another run
    may have written one since the settings were first checked."""
    if int(os.environ.get("RANK", "0")) != 0:
        yield
        return
    path = lock_path(out)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create {path.parent}: {describe_os_error(exc)}") from None
    fd = _acquire(path, out)
    try:
        if fresh:
            run_rules.check_fresh_out(out, overwrite)
        yield
    finally:
        # Unlink while still holding the lock: a process that opened the old file then finds
        # it gone (see _acquire) instead of locking a file nobody else can see.
        path.unlink(missing_ok=True)
        os.close(fd)


def _acquire(path: Path, out: Path) -> int:
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        except OSError as exc:
            raise ConfigError(f"cannot lock {out} for this run ({path}: {describe_os_error(exc)})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
            os.close(fd)
            who = f"process {owner}" if owner.isdigit() else "another process"
            raise ConfigError(f"{out} is in use by another training run ({who}); wait for it to end, "
                              "or pass a different --out") from None
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if not same:  # the previous owner removed the file between our open and our lock
            os.close(fd)
            continue
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except OSError:  # a full disk: the lock holds without the id; the run reports the disk
            pass
        return fd
