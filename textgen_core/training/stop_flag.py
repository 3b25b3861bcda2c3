"""When a training loop stops early, shared by the GPT, GAN and stack loops.

Ctrl-C: the first asks the loop to stop at the next step boundary (the trainer then saves); a
second one interrupts at once.

`TEXTGEN_STEP_LIMIT=N`: this process takes at most N steps, then evaluates, saves and ends as a
finished run does (exit code 0). The run's settings are untouched (its schedule, its intervals,
its saved `--max-iters`), so a later `--resume` continues it; the README's commands run at tiny
scale this way in CI.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager

from textgen_core.errors import ConfigError

STEP_LIMIT_ENV = "TEXTGEN_STEP_LIMIT"


def run_end(start_step: int, max_iters: int) -> int:
    """The step this process stops at: `max_iters`, or sooner under TEXTGEN_STEP_LIMIT."""
    raw = os.environ.get(STEP_LIMIT_ENV, "").strip()
    if not raw:
        return max_iters
    if not raw.isdigit() or int(raw) < 1:
        raise ConfigError(f"{STEP_LIMIT_ENV} must be a positive integer, got {raw[:40]!r}")
    return min(max_iters, start_step + int(raw))


class StopFlag:
    """`requested` turns True on the first Ctrl-C while `installed()` is active."""

    def __init__(self) -> None:
        self.requested = False

    @contextmanager
    def installed(self) -> Iterator[None]:
        try:
            previous = signal.signal(signal.SIGINT, self._handle)
        except ValueError:  # not the main thread: leave Ctrl-C alone
            yield
            return
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)

    def _handle(self, signum: int, frame: object) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
