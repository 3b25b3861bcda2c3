"""The GAN run's terminal display: a rich progress bar with both players' losses, and one line
per evaluation with sample sentences. The only GAN training module that prints."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn
from rich.text import Text

from textgen_core.training.progress_display import ProgressDisplay, fmt


def _fmt(value: float | None, spec: str = ".3f") -> str:
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
        self.progress.update(self.task, completed=step, phase=phase, d=_fmt(d_loss),
                             g=_fmt(g_loss), w=_fmt(wasserstein), speed=f"{sentences_per_s:,.0f}")

    def evaluation(self, step: int, phase: str, val_nll: float, wasserstein: float,
                   samples: list[str]) -> None:
        self.progress.update(self.task, val=_fmt(val_nll))
        self.console.print(Text.assemble(
            (f"step {step}", "bold"), f" ({phase}): held-out NLL {_fmt(val_nll)} nats/word, "
            f"critic W estimate {_fmt(wasserstein)}"))
        for sample in samples:
            self.console.print(Text("  " + sample.replace("\x1b", "\ufffd"), style="dim"))
        self._flush_when_piped()
