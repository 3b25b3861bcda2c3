"""The training run's terminal display, the only training module that prints.

Shared by every family: a rich progress bar that ends in elapsed time and ETA and is drawn only
on a terminal, the lines printed above it, and the number format that shows a missing or
non-finite value as "-". `TrainingDisplay` (GPT and stack) shows loss, val loss, tokens/s, MFU
and one line per evaluation with a short sample; `GANDisplay` shows both players' losses and one
line per evaluation with sample sentences.
"""

from __future__ import annotations

import math
import sys
from types import TracebackType
from typing import Self

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from runtime.terminal_text import plain


def fmt(value: float | None, spec: str) -> str:
    return "-" if value is None or not math.isfinite(value) else format(value, spec)


class ProgressDisplay:
    """`columns` lead the bar; elapsed time and ETA follow them. A subclass adds its `task`."""

    task: TaskID

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
        self.console.print(plain(text, style=style))

    def plan(self, total_steps: int) -> None:
        """A new total for the bar: a --time-budget run re-plans its steps as it measures them."""
        self.progress.update(self.task, total=total_steps)

    def _flush_when_piped(self) -> None:
        # Piped output is block-buffered: show each evaluation line as it happens.
        if not self._interactive:
            sys.stdout.flush()


def _fmt(value: float | None, spec: str = ".4f") -> str:
    return fmt(value, spec)


class TrainingDisplay(ProgressDisplay):
    def __init__(self, total_steps: int, start_step: int, console: Console | None = None) -> None:
        super().__init__(
            console,
            TextColumn("[bold]train"),
            BarColumn(bar_width=28),
            MofNCompleteColumn(),
            TextColumn("loss [cyan]{task.fields[loss]}"),
            TextColumn("val [magenta]{task.fields[val]}"),
            TextColumn("{task.fields[speed]} tok/s"),
            TextColumn("{task.fields[mfu]}"),
        )
        self.task = self.progress.add_task(
            "train", total=total_steps, completed=start_step,
            loss="-", val="-", speed="-", mfu="",
        )

    def step(self, step: int, loss: float, tokens_per_s: float, mfu: float | None) -> None:
        self.progress.update(
            self.task,
            completed=step,
            loss=_fmt(loss),
            speed=f"{tokens_per_s:,.0f}",
            mfu=f"MFU {mfu * 100:.1f}%" if mfu is not None else "",
        )

    def evaluation(
        self, step: int, train_loss: float, val_loss: float, tokens_per_s: float, sample: str
    ) -> None:
        self.progress.update(self.task, val=_fmt(val_loss))
        line = Text.assemble(
            (f"step {step}", "bold"),
            f": train {_fmt(train_loss)}  val {_fmt(val_loss)}  {tokens_per_s:,.0f} tok/s",
        )
        self.console.print(line)
        if sample:
            shown = sample if len(sample) <= 300 else sample[:300] + "…"
            self.console.print(plain(shown, style="dim"))
        self._flush_when_piped()


def _gan_fmt(value: float | None, spec: str = ".3f") -> str:
    return fmt(value, spec)


class GANDisplay(ProgressDisplay):
    def __init__(self, total_steps: int, start_step: int, console: Console | None = None) -> None:
        super().__init__(
            console,
            TextColumn("[bold]{task.fields[phase]}"),
            BarColumn(bar_width=24),
            MofNCompleteColumn(),
            TextColumn("D [cyan]{task.fields[d]}"),
            TextColumn("G [green]{task.fields[g]}"),
            TextColumn("W [yellow]{task.fields[w]}"),
            TextColumn("val NLL [magenta]{task.fields[val]}"),
            TextColumn("{task.fields[speed]} sent/s"),
        )
        self.task = self.progress.add_task("gan", total=total_steps, completed=start_step,
                                           phase="gan", d="-", g="-", w="-", val="-", speed="-")

    def step(self, step: int, phase: str, d_loss: float, g_loss: float, wasserstein: float,
             sentences_per_s: float) -> None:
        self.progress.update(self.task, completed=step, phase=phase, d=_gan_fmt(d_loss),
                             g=_gan_fmt(g_loss), w=_gan_fmt(wasserstein), speed=f"{sentences_per_s:,.0f}")

    def evaluation(self, step: int, phase: str, val_nll: float, wasserstein: float,
                   samples: list[str]) -> None:
        self.progress.update(self.task, val=_gan_fmt(val_nll))
        self.console.print(Text.assemble(
            (f"step {step}", "bold"), f" ({phase}): held-out NLL {_gan_fmt(val_nll)} nats/word, "
            f"critic W estimate {_gan_fmt(wasserstein)}"))
        for sample in samples:
            self.console.print(plain("  " + sample, style="dim"))
        self._flush_when_piped()
