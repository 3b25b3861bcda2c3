"""`--time-budget MINUTES`: a training run of any family planned to end on time.

A loop cannot know how many steps fit the budget before it runs them, so under a budget the
schedule is a function of the fraction of the budget spent (wall clock since the loop's first
step, its evaluations and saves included): the warmup takes the first `--warmup-iters` steps (at
most a tenth of the steps the speed of the first steps projects), and the cosine decay reaches
`--min-lr` when the time left is what the final evaluation and save are expected to take (what
the latest ones took). A slower or faster machine, or one whose load changes during the run,
still ends its decay at the budget. The GAN's MLE warm-up takes the recipe's share of the budget
(`--mle-iters` of `--max-iters`) and the adversarial phase the rest. Evaluations fall at tenths
of the budget and checkpoints at quarters (the step intervals apply to step runs only), each
counted from the end of the one before (intermediate ones are left out where ten evaluations or
four saves would cost more than a tenth of the budget); the loop stops before a step that would
not end in time, then evaluates and saves as a finished run does.

The budget counts the loop, not the setup before it (reading and tokenizing the corpus, the
dtype measurement), and it is this process's: `--resume` with `--time-budget` gives the resumed
run that much time, continuing the saved decay from where it stopped to its end at the new
budget. A checkpoint saves the step schedule the run turned out to be (`max_iters` the last
step, or the projected one while it runs), so `--resume` without a budget continues it by steps.
`--max-iters` given with `--time-budget` caps the steps: the run stops at whichever comes first
(the preset's `max_iters` does not cap a budgeted run). TEXTGEN_STEP_LIMIT caps it too.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import torch

from textgen_core.errors import ConfigError
from textgen_core.training.distributed import DistContext, broadcast_from_main
from textgen_core.training.loop import Due
from textgen_core.training.run_summary import RunSummary

EVALUATIONS = 10  # evaluations per budget, the last one at its end
CHECKPOINTS = 4  # checkpoints per budget, the last one at its end
MAX_MINUTES = 7 * 24 * 60.0  # a week
UNBOUNDED_STEPS = 1 << 62  # the step cap of a budgeted run without --max-iters


def budget_minutes(run: dict[str, Any]) -> float | None:
    """The run's `--time-budget` (flag or config file `time_budget`), checked; None when not given."""
    value = run.get("time_budget")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
            math.isfinite(value) and 0 < value <= MAX_MINUTES):
        raise ConfigError(f"--time-budget must be a number of minutes in (0, {MAX_MINUTES:,.0f}], "
                          f"got {value!r:.40}")
    return float(value)


def step_cap(spec: Any, max_iters: int) -> int:
    """The last step a run may reach: its --max-iters, unless a budget without one plans it."""
    return UNBOUNDED_STEPS if spec.time_budget is not None and not spec.max_iters_given else max_iters


def decay_progress(step: int, warmup_iters: int, decay_iters: int) -> float:
    """How far the step schedule `lr_at` has decayed at `step`, from 0 to 1: where a resumed
    budgeted run continues it from."""
    if step < warmup_iters:
        return 0.0
    return min((step - warmup_iters) / max(1, decay_iters - warmup_iters), 1.0)


def budget_for(spec: Any, start_step: int, max_iters: int, warmup_iters: int = 0,
               start_progress: float = 0.0, ctx: DistContext | None = None,
               device: torch.device | None = None) -> TimeBudget | None:
    """The run's budget, its clock started now (just before the loop); None for a step run."""
    if spec.time_budget is None:
        return None
    agree: Callable[[float], float] = float
    if ctx is not None and ctx.enabled and device is not None:
        agree = lambda value: broadcast_from_main(value, ctx, device)  # noqa: E731
    return TimeBudget(spec.time_budget, start_step, warmup_iters, start_progress, agree=agree,
                      cap=step_cap(spec, max_iters))


def with_budget_steps(summary: RunSummary, spec: Any, start_step: int, end_step: int) -> RunSummary:
    """The start-of-run summary's steps, said as a budget's: until the time is up."""
    if spec.time_budget is None:
        return summary
    cap = f", at most to step {end_step:,}" if spec.max_iters_given else ""
    return replace(summary, steps=f"{start_step} -> as many as fit {spec.time_budget:g} min "
                                  f"(--time-budget{cap})")


def cosine(peak: float, floor: float, progress: float) -> float:
    """The cosine decay from `peak` (progress 0) to `floor` (progress 1)."""
    return floor + 0.5 * (1.0 + math.cos(math.pi * min(max(progress, 0.0), 1.0))) * (peak - floor)


class TimeBudget:
    """The clock of a budgeted run. The loop calls `running()` at the top of each iteration,
    `stepped(done, end_step)` after each step, and reads `lr()`, `fraction` and `due` between.

    `agree` makes every rank of a distributed run take rank 0's value of each decision (the
    learning rate's fraction, the stop, the evaluation and save), so that ranks step together."""

    def __init__(self, minutes: float, start_step: int, warmup_iters: int = 0,
                 start_progress: float = 0.0, clock: Callable[[], float] = time.perf_counter,
                 agree: Callable[[float], float] = float, cap: int = UNBOUNDED_STEPS) -> None:
        self.seconds = minutes * 60.0
        self.cap = cap  # --max-iters, when given
        self.start_step = start_step
        self.warmup = warmup_iters
        self.start_progress = min(max(start_progress, 0.0), 1.0)
        self.clock, self.agree = clock, agree
        self.started = clock()
        self.fraction = 0.0  # of the usable time, at the top of the current step
        self.last_lr = math.nan  # the learning rate `lr` gave last
        self.finished = False
        self.ended = False  # the run's plan ended (time, or --max-iters), not only this process
        self.due = Due(log=False, evaluate=False, save=False)
        self._last_end: float | None = None  # when the previous step ended
        self._after: Due | None = None  # what was due after the previous step
        self._finish = {"evaluate": 0.0, "save": 0.0}  # what the last evaluation and save took
        self._decay_from: float | None = None
        self._marks = {"evaluate": 1, "save": 1}  # the next tenth and quarter
        self._measured = {"evaluate": 0, "save": 0}  # evaluations and saves timed so far
        self._step_start = self.started
        self._step_s = 0.0  # a step's time, smoothed; the process's first step (compilation,
        # caches) only until the second is measured
        self._first_end: float | None = None  # when the process's first step ended

    @property
    def elapsed(self) -> float:
        return self.clock() - self.started

    @property
    def usable(self) -> float:
        """The seconds for steps and intermediate evaluations: the final ones come after."""
        return max(self.seconds - sum(self._finish.values()), 1e-9)

    def running(self) -> bool:
        """At the top of an iteration: record what the work after the last step cost, and the
        fraction this step's learning rate reads. False once the budget's last step ran."""
        now = self.clock()
        if self._last_end is not None and self._after is not None:
            gap = now - self._last_end
            # Due together, an evaluation and a save are charged to the evaluation: the final
            # reserve is then their sum or more. The latest cost counts (the first evaluation
            # also pays for imports and caches).
            kind = "evaluate" if self._after.evaluate else "save" if self._after.save else None
            if kind is not None:
                self._finish[kind] = gap
                self._measured[kind] += 1
                count = EVALUATIONS if kind == "evaluate" else CHECKPOINTS
                self._marks[kind] = int((now - self.started) * count / self.seconds) + 1
        self.fraction = self.agree(min((now - self.started) / self.usable, 1.0))
        self._step_start = self.clock()
        return not self.finished

    def lr(self, step: int, peak: float, floor: float) -> float:
        """Linear warmup over `warmup` steps, then the cosine decay over the budget's time."""
        if step < self.warmup:
            self.last_lr = peak * (step + 1) / (self.warmup + 1)
            return self.last_lr
        if self._decay_from is None:
            self._decay_from = self.fraction
        span = 1.0 - self._decay_from
        progress = 1.0 if span <= 0 else (self.fraction - self._decay_from) / span
        self.last_lr = cosine(peak, floor, self.start_progress + (1.0 - self.start_progress) * progress)
        return self.last_lr

    def stepped(self, done: int, end_step: int, log_interval: int) -> Due:
        """After step `done`: whether it was the last (the next would not end in time, or
        `end_step` is reached) and what is due, agreed by every rank; a log line every
        `log_interval` steps, as in a step run."""
        now = self.clock()
        steps = done - self.start_step
        elapsed = now - self.started
        took = now - self._step_start
        self._step_s = took if steps <= 2 else 0.8 * self._step_s + 0.2 * took
        if steps == 1:
            self._first_end = now
        if steps == 3 and self.warmup:  # the first projection: a warmup that fits the run
            self.warmup = min(self.warmup, self.projected_end(done) // 10)
        time_up = elapsed + self._step_s > self.usable
        last = done >= end_step or time_up
        evaluate = last or self._passed("evaluate", elapsed, EVALUATIONS)
        save = last or self._passed("save", elapsed, CHECKPOINTS)
        code = self.agree(float(4 * last + 2 * evaluate + save))
        self.finished = code >= 4
        self.ended = self.finished and (time_up or done >= self.cap)
        self.due = Due(log=done % log_interval == 0, evaluate=bool(int(code) & 2),
                       save=bool(int(code) & 1))
        self._last_end, self._after = self.clock(), self.due
        return self.due

    def _passed(self, kind: str, elapsed: float, count: int) -> bool:
        """Whether the next of `count` marks is passed; intermediate evaluations (or saves) that
        would cost more than a tenth of the budget in all (a budget of seconds) wait for the end.
        The first one's cost also pays for imports and caches, so the rule waits for a second."""
        mark = self._marks[kind]
        costly = self._measured[kind] >= 2 and self._finish[kind] * count > self.seconds / 10
        if elapsed < mark * self.seconds / count or costly:
            return False
        self._marks[kind] = int(elapsed * count / self.seconds) + 1
        return True

    def projected_end(self, done: int) -> int:
        """The step the run will stop at, at the speed so far (evaluations included): `done`
        once it ended; one that TEXTGEN_STEP_LIMIT stopped keeps its plan, as a step run does."""
        return done if self.ended else min(self.cap, max(done + 1, self.projected_at(1.0, done)))

    def projected_at(self, fraction: float, done: int) -> int:
        """The step at which `fraction` of the usable time will be spent, at the speed since the
        process's first step (evaluations included; the first step's compilation left out)."""
        now = self.clock()
        elapsed, steps, since = now - self.started, done - self.start_step, self.started
        if steps >= 2 and self._first_end is not None:
            steps, since = steps - 1, self._first_end
        if steps <= 0 or now <= since:
            return done
        return done + max(0, int((fraction * self.usable - elapsed) * steps / (now - since)))

    def saved_steps(self, done: int) -> dict[str, int]:
        """The step schedule a checkpoint records for this run: it ends at the last step (the
        projected one while the run goes on), with the warmup it took."""
        end = self.projected_end(done)
        return {"max_iters": end, "warmup_iters": min(self.warmup, max(end - 1, 0))}
