"""How a training command ends (GPT, GAN and stack alike): a user error is one red line and exit
code 1, Ctrl-C before the loop takes it over is one yellow line and exit code 130, a finished
run is one summary line."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console

from runtime.terminal_text import plain, print_error
from textgen_core.errors import TextgenError

EXIT_INTERRUPTED = 130


@dataclass
class RunResult:
    """What a GPT or stack training run reports back to its command line."""

    step: int
    val_loss: float
    best_val_loss: float
    tokens_per_s: float
    train_seconds: float
    interrupted: bool = False
    losses: list[float] = field(default_factory=list)
    is_main: bool = True  # False on the non-zero ranks of a distributed run


def exit_code(console: Console, command: Callable[[], int]) -> int:
    """Run `command` (it returns its own exit code) and turn the failures a user can cause into
    a line on `console` and an exit code."""
    try:
        return command()
    except TextgenError as exc:
        print_error(exc, console)
        return 1
    except KeyboardInterrupt:
        console.print("interrupted; the last saved checkpoint is intact", style="yellow")
        return EXIT_INTERRUPTED


def print_summary(out: Path, result: RunResult) -> int:
    """The GPT and stack runs' last line; the exit code says whether Ctrl-C stopped the run."""
    if math.isfinite(result.val_loss):
        losses = f"val loss {result.val_loss:.4f} (best {result.best_val_loss:.4f})"
    else:  # saved (Ctrl-C) before the first evaluation
        losses = "not evaluated yet"
    Console().print(plain(  # the --out name is shown as written, never read as rich markup
        f"saved {out}: step {result.step}, {losses}, {result.tokens_per_s:,.0f} tok/s, "
        f"{result.train_seconds:.0f} s of training"), highlight=False, soft_wrap=True)
    return EXIT_INTERRUPTED if result.interrupted else 0
