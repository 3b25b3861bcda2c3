"""How a training command ends (GPT, GAN and stack alike): a user error is one red line and exit
code 1, Ctrl-C before the loop takes it over is one yellow line and exit code 130, a finished
run is one summary line."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.text import Text

from textgen_core.errors import TextgenError
from textgen_core.training.run_result import RunResult

EXIT_INTERRUPTED = 130


def exit_code(console: Console, command: Callable[[], int]) -> int:
    """Run `command` (it returns its own exit code) and turn the failures a user can cause into
    a line on `console` and an exit code."""
    try:
        return command()
    except TextgenError as exc:
        console.print(Text.assemble(("error: ", "bold red"), str(exc)), soft_wrap=True)
        return 1
    except KeyboardInterrupt:
        console.print("interrupted; the last saved checkpoint is intact", style="yellow")
        return EXIT_INTERRUPTED


def print_summary(out: Path, result: RunResult) -> int:
    """The GPT and stack runs' last line; the exit code says whether Ctrl-C stopped the run."""
    Console().print(
        f"saved {out}: step {result.step}, val loss {result.val_loss:.4f} "
        f"(best {result.best_val_loss:.4f}), {result.tokens_per_s:,.0f} tok/s, "
        f"{result.train_seconds:.0f} s of training", highlight=False, soft_wrap=True)
    return EXIT_INTERRUPTED if result.interrupted else 0
