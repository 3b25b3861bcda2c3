"""What the training displays (GPT and stack: progress.py, GAN: gan_progress.py) share: a rich
progress bar that ends in elapsed time and ETA and is drawn only on a terminal, the lines printed
above it, and the number format that shows a missing or non-finite value as "-"."""

from __future__ import annotations

import math
import sys
from types import TracebackType
from typing import Self

from rich.console import Console
from rich.progress import (
    Progress,
    ProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text


def fmt(value: float | None, spec: str) -> str:
    return "-" if value is None or not math.isfinite(value) else format(value, spec)


class ProgressDisplay:
    """`columns` lead the bar; elapsed time and ETA follow them."""

    def __init__(self, console: Console | None, *columns: ProgressColumn) -> None:
        self.console = console or Console(stderr=False)
        self._interactive = self.console.is_terminal
        self.progress = Progress(
            *columns,
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=self.console,
            disable=not self._interactive,
        )

    def __enter__(self) -> Self:
        self.progress.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.progress.stop()

    def message(self, text: str, style: str = "") -> None:
        self.console.print(Text(text, style=style))

    def _flush_when_piped(self) -> None:
        # Piped output is block-buffered: show each evaluation line as it happens.
        if not self._interactive:
            sys.stdout.flush()
