"""The training run's terminal display: a rich progress bar with loss, val loss, tokens/s, MFU
and ETA, and one line per evaluation with a short sample. The only training module that prints."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn
from rich.text import Text

from textgen_core.training.progress_display import ProgressDisplay, fmt


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
            self.console.print(Text(shown.replace("\x1b", "\ufffd"), style="dim"))
        self._flush_when_piped()
