"""What every family's training loop (training/gpt.py, gan.py, stack.py) calls around its step:
when it stops, its speed, the divergence check, and the cadence of logs, evaluations and saves.
Each loop stays explicit about its own step; these are the parts that must not drift.

Ctrl-C: the first asks the loop to stop at the next step boundary (the trainer then saves); a
second one interrupts at once.

`TEXTGEN_STEP_LIMIT=N`: this process takes at most N steps, then evaluates, saves and ends as a
finished run does (exit code 0). The run's settings are untouched (its schedule, its intervals,
its saved `--max-iters`), so a later `--resume` continues it; the README's commands run at tiny
scale this way in CI.
"""

from __future__ import annotations

import math
import os
import shlex
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple, Protocol

import torch

from runtime.tokenizer import tokenizer_from_dict
from textgen_core.data.corpus import resolve_corpus
from textgen_core.data.token_store import TokenSplits, load_token_splits
from textgen_core.errors import ConfigError, TrainingDivergedError
from textgen_core.training.distributed import DistContext, any_rank
from textgen_core.training.rng import restore_rng
from textgen_core.training.run_rules import check_same_corpus

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


class Cadence(Protocol):
    log_interval: int
    eval_interval: int
    checkpoint_interval: int


class Due(NamedTuple):
    log: bool
    evaluate: bool
    save: bool


def due_after(done: int, end_step: int, tc: Cadence) -> Due:
    """The work due after step `done`: a log line every log_interval, an evaluation every
    eval_interval, a checkpoint every checkpoint_interval, and both at the run's last step."""
    last = done == end_step
    return Due(log=done % tc.log_interval == 0, evaluate=done % tc.eval_interval == 0 or last,
               save=done % tc.checkpoint_interval == 0 or last)


def save_if_interrupted(stop: StopFlag, state: dict[str, Any], end_step: int,
                        ctx: DistContext, device: torch.device, save: Callable[[], None],
                        display: Any, out: object, family: str = "gpt") -> bool:
    """After the loop: a run stopped by Ctrl-C (on any rank) before its end saves where it is,
    and says the command that continues it."""
    interrupted = any_rank(stop.requested, ctx, device) and state["step"] < end_step
    if interrupted:
        save()
        display.message(f"interrupted: saved {out} at step {state['step']}; continue with "
                        f"`{resume_command(out, family)}`", style="yellow")
    return interrupted


def resume_command(out: object, family: str = "gpt") -> str:
    """The command line that continues the run saved at `out` (its corpus, schedule and
    settings are in the checkpoint)."""
    model = "" if family == "gpt" else f" --model {family}"
    return f"python -m textgen_core.train{model} --resume --out {shlex.quote(str(out))}"


def check_finite(value: float, step: int, advice: str, what: str = "loss") -> None:
    """A non-finite loss ends the run with a one-line error; the last checkpoint stays."""
    if not math.isfinite(value):
        raise TrainingDivergedError(f"{what} became {value} at step {step}; the last checkpoint is "
                                    f"kept. {advice}")


class Throughput:
    """Units per second and the loss, smoothed over steps (0.9 / 0.1). The first step of a
    process (compilation, warm-up) only seeds the estimate."""

    def __init__(self) -> None:
        self.speed = 0.0
        self.loss = math.nan

    def update(self, units: float, seconds: float, loss: float | None = None) -> None:
        rate = units / seconds
        self.speed = rate if self.speed == 0.0 else 0.9 * self.speed + 0.1 * rate
        if loss is not None:
            self.loss = loss if math.isnan(self.loss) else 0.9 * self.loss + 0.1 * loss


def token_run_data(spec: Any) -> TokenSplits:
    """A GPT or stack run's corpus as token splits: encoded with the checkpoint's tokenizer when
    resuming or fine-tuning (a fresh run trains the one `spec.tokenizer` asks for), and on
    --resume only from the same files as before."""
    source = spec.resume_from or spec.init_from
    tokenizer = tokenizer_from_dict(source["tokenizer"]) if source else None
    splits = load_token_splits(resolve_corpus(spec.corpus, spec.encoding), tokenizer, spec.tokenizer)
    if spec.resume_from is not None:
        check_same_corpus(spec.resume_from["train_state"], splits.meta["fingerprint"])
    return splits


def token_run_state(resume_from: dict[str, Any] | None, optimizer: torch.optim.Optimizer,
                    batch_generator: torch.Generator, ctx: DistContext) -> dict[str, Any]:
    """A GPT or stack run's counters, fresh or as saved, with the optimizer and the random
    streams restored from the checkpoint on --resume."""
    state: dict[str, Any] = {"step": 0, "tokens_seen": 0, "val_loss": math.nan,
                             "best_val_loss": math.inf, "train_seconds": 0.0}
    if resume_from is not None:
        saved = resume_from["train_state"]
        optimizer.load_state_dict(resume_from["optimizer"])
        restore_rng(saved["rng"], batch_generator, rank=ctx.rank, world_size=ctx.world_size)
        for key in state:
            state[key] = saved.get(key, state[key])
    return state
