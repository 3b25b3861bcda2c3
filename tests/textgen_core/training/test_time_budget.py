"""training/time_budget.py: the budget's clock on a fake clock (warmup, decay to its end,
evaluations at tenths, the stop before a step that would not end in time), then every family's
run under `--time-budget` as the user types it: it stops on time with an evaluated checkpoint
that records the step schedule it turned out to be, with --max-iters, TEXTGEN_STEP_LIMIT and
--resume."""

from __future__ import annotations

import itertools
import json
import math
import time
from pathlib import Path

import pytest

from textgen_core.errors import ConfigError
from textgen_core.train import main as train_main
from textgen_core.training.checkpoint import load_checkpoint
from textgen_core.training.loop import STEP_LIMIT_ENV
from textgen_core.training.metrics_log import metrics_path
from textgen_core.training.time_budget import TimeBudget, budget_minutes, cosine, decay_progress

pytestmark = pytest.mark.usefixtures("one_torch_thread")

BUDGET_MINUTES = 0.06  # 3.6 s
SLACK_S = 3.0  # the final evaluation and save, and a loaded machine
GPT_FLAGS = ["--preset", "nano", "--device", "cpu", "--sample-tokens", "0", "--dtype", "fp32",
             "--log-interval", "1"]


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _run_budget(budget: TimeBudget, clock: FakeClock, step_s: float, eval_s: float,
                end_step: int = 10**9, first_step_s: float | None = None,
                first_eval_s: float | None = None) -> list[tuple[int, float, bool]]:
    """Steps of `step_s` each (the first `first_step_s`), an evaluation costing `eval_s` (the
    first `first_eval_s`); (step, lr, evaluated) per step."""
    seen: list[tuple[int, float, bool]] = []
    step = budget.start_step
    while step < end_step and budget.running():
        lr = budget.lr(step, 1.0, 0.1)
        clock.now += first_step_s if first_step_s is not None and step == budget.start_step else step_s
        step += 1
        due = budget.stepped(step, end_step, log_interval=1)
        seen.append((step, lr, due.evaluate))
        if due.evaluate:
            first = first_eval_s is not None and not any(e for _, _, e in seen[:-1])
            clock.now += first_eval_s if first else eval_s
    return seen


def test_warmup_then_the_decay_ends_at_the_budget() -> None:
    clock = FakeClock()
    budget = TimeBudget(1.0, start_step=0, warmup_iters=100, clock=clock)
    seen = _run_budget(budget, clock, step_s=0.1, eval_s=0.5)
    steps = [s for s, _, _ in seen]
    lrs = [lr for _, lr, _ in seen]
    # 60 s of 0.1 s steps, less ten evaluations of 0.5 s: a little under 550 steps.
    assert 500 < steps[-1] < 600 and budget.finished
    assert budget.warmup == 60 == budget.saved_steps(steps[-1])["warmup_iters"]  # a tenth of the plan
    assert lrs[0] == pytest.approx(1 / 101) and max(lrs) == pytest.approx(1.0, abs=0.01)
    assert lrs[-1] == pytest.approx(0.1, abs=0.002)  # the decay reached its end
    assert all(a >= b for a, b in itertools.pairwise(lrs[60:]))  # it only decays
    assert clock.now - 100.0 <= 60.0 + 0.1  # the final evaluation ended within the budget
    evaluated = [s for s, _, e in seen if e]
    assert len(evaluated) == 10 and evaluated[-1] == steps[-1]
    assert budget.saved_steps(steps[-1])["max_iters"] == steps[-1]


def test_a_slow_first_step_is_left_out_of_the_plan() -> None:
    """A first step that compiles for half the budget neither shrinks the warmup to nothing nor
    stops the run early: the steps after it are planned at their own speed."""
    clock = FakeClock()
    budget = TimeBudget(1.0, start_step=0, warmup_iters=100, clock=clock)
    seen = _run_budget(budget, clock, step_s=0.1, eval_s=0.0, first_step_s=30.0)
    assert budget.warmup == 30  # a tenth of the ~300 steps the last 30 s hold
    assert 290 < seen[-1][0] <= 301 and seen[-1][1] == pytest.approx(0.1, abs=0.002)


def test_max_iters_stops_first_and_costly_evaluations_wait_for_the_end() -> None:
    clock = FakeClock()
    seen = _run_budget(TimeBudget(1.0, 0, clock=clock), clock, step_s=0.1, eval_s=0.0,
                       end_step=40)
    assert seen[-1][0] == 40 and seen[-1][2]
    clock = FakeClock()  # an evaluation of 2 s costs more than a hundredth of 60 s
    seen = _run_budget(TimeBudget(1.0, 0, clock=clock), clock, step_s=0.1, eval_s=2.0)
    # The first two (the first one's cost may be imports), then only the last.
    assert [s for s, _, e in seen if e] == [61, 101, seen[-1][0]]


def test_a_slow_first_evaluation_does_not_cancel_the_others() -> None:
    """The first evaluation also pays for imports and caches: its cost alone does not decide
    that evaluations are too costly to hold before the end."""
    clock = FakeClock()
    seen = _run_budget(TimeBudget(1.0, 0, clock=clock), clock, step_s=0.1, eval_s=0.2,
                       first_eval_s=8.0)
    assert len([s for s, _, e in seen if e]) >= 9


def test_a_resumed_budget_continues_the_saved_decay() -> None:
    assert decay_progress(10, 100, 1000) == 0.0 and decay_progress(550, 100, 1000) == 0.5
    assert decay_progress(1000, 100, 1000) == 1.0
    clock = FakeClock()
    budget = TimeBudget(1.0, start_step=550, warmup_iters=100, start_progress=0.5, clock=clock)
    seen = _run_budget(budget, clock, step_s=0.1, eval_s=0.0)
    assert seen[0][1] == pytest.approx(cosine(1.0, 0.1, 0.5), abs=0.01)  # no jump back up
    assert seen[-1][1] == pytest.approx(0.1, abs=0.002)


@pytest.mark.parametrize("value", [0, -1, math.inf, "10", True, 1e9])
def test_budget_is_a_number_of_minutes(value: object) -> None:
    with pytest.raises(ConfigError, match="--time-budget must be a number of minutes"):
        budget_minutes({"time_budget": value})


def _records(out: Path) -> list[dict]:
    return [json.loads(line) for line in metrics_path(out).read_text().splitlines()]


def test_gpt_stops_on_time_with_an_evaluated_checkpoint(tiny_corpus_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "gpt.pt"
    started = time.perf_counter()
    assert train_main([*GPT_FLAGS, "--corpus", str(tiny_corpus_file), "--out", str(out),
                       "--time-budget", str(BUDGET_MINUTES)]) == 0
    assert time.perf_counter() - started < BUDGET_MINUTES * 60 + SLACK_S + 3.0  # + setup
    payload = load_checkpoint(out, kind="gpt")
    state, saved = payload["train_state"], payload["train_config"]
    assert state["step"] > 20 and math.isfinite(state["val_loss"])
    assert saved["max_iters"] == state["step"] != 100  # not the preset's 100 steps
    records = _records(out)
    assert records[-1]["event"] == "eval" and records[-1]["step"] == state["step"]
    last_lr = [r["lr"] for r in records if r["event"] == "train"][-1]
    assert last_lr == pytest.approx(saved["min_lr"], rel=0.05)  # the schedule reached its end
    # A finished budgeted run is a finished step run: --resume asks for more steps, or a budget.
    assert train_main(["--resume", "--out", str(out), "--device", "cpu"]) == 1
    assert train_main(["--resume", "--out", str(out), "--device", "cpu", "--time-budget", "0.02"]) == 0
    resumed = load_checkpoint(out, kind="gpt")["train_state"]["step"]
    assert resumed > state["step"]
    lrs = [r["lr"] for r in _records(out) if r["event"] == "train" and r["step"] > state["step"]]
    assert max(lrs) == pytest.approx(saved["min_lr"], rel=0.05)  # the decay had ended: it stays


def test_max_iters_and_the_step_limit_cap_a_budget(tiny_corpus_file: Path, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "capped.pt"
    assert train_main([*GPT_FLAGS, "--corpus", str(tiny_corpus_file), "--out", str(out),
                       "--time-budget", "5", "--max-iters", "12"]) == 0
    payload = load_checkpoint(out, kind="gpt")
    assert payload["train_state"]["step"] == payload["train_config"]["max_iters"] == 12
    monkeypatch.setenv(STEP_LIMIT_ENV, "3")
    limited = tmp_path / "limited.pt"
    assert train_main([*GPT_FLAGS, "--corpus", str(tiny_corpus_file), "--out", str(limited),
                       "--time-budget", "5"]) == 0
    payload = load_checkpoint(limited, kind="gpt")
    state = payload["train_state"]
    assert state["step"] == 3 and math.isfinite(state["val_loss"])
    # The step limit stops this process only: the checkpoint keeps the budget's plan, so that
    # --resume continues it as it continues a step run.
    assert payload["train_config"]["max_iters"] > 3


def test_gan_takes_the_mle_share_of_the_budget(sentence_corpus_file: Path, tmp_path: Path,
                                               tiny_gan_flags: list[str]) -> None:
    out = tmp_path / "gan.pt"
    started = time.perf_counter()
    assert train_main([*tiny_gan_flags, "--corpus", str(sentence_corpus_file), "--out", str(out),
                       "--time-budget", str(BUDGET_MINUTES), "--max-iters", "100000",
                       "--mle-iters", "50000"]) == 0
    assert time.perf_counter() - started < BUDGET_MINUTES * 60 + SLACK_S + 3.0
    payload = load_checkpoint(out, kind="gan")
    state, saved = payload["train_state"], payload["train_config"]
    assert math.isfinite(state["val_nll"]) and saved["max_iters"] == state["step"] < 100000
    phases = [r["phase"] for r in _records(out) if r["event"] == "train"]
    assert phases[0] == "mle" and phases[-1] == "adversarial"
    assert 0 < saved["mle_iters"] < state["step"]


def test_stack_stops_on_time(tiny_corpus_file: Path, tmp_path: Path) -> None:
    layers = tmp_path / "layers.toml"
    layers.write_text('[[layers]]\ntype = "Embedding"\n[[layers]]\ntype = "PositionalEmbedding"\n'
                      '[[layers]]\ntype = "Block"\n[[layers]]\ntype = "TemporalDense"\n'
                      '[[layers]]\ntype = "CrossEntropyLoss"\n', encoding="utf-8")
    out = tmp_path / "stack.pt"
    started = time.perf_counter()
    assert train_main(["--model", "stack", "--preset", "nano", "--layers", str(layers),
                       "--corpus", str(tiny_corpus_file), "--out", str(out), "--device", "cpu",
                       "--sample-tokens", "0", "--log-interval", "1",
                       "--time-budget", str(BUDGET_MINUTES)]) == 0
    assert time.perf_counter() - started < BUDGET_MINUTES * 60 + SLACK_S + 3.0
    payload = load_checkpoint(out, kind="stack")
    state, saved = payload["train_state"], payload["train_config"]
    assert math.isfinite(state["val_loss"]) and saved["max_iters"] == state["step"] > 10
    last_lr = [r["lr"] for r in _records(out) if r["event"] == "train"][-1]
    assert last_lr == pytest.approx(saved["min_lr"], abs=3e-5)  # decayed to the plateau floor


def test_config_file_takes_a_time_budget(tiny_corpus_file: Path, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "run.toml"
    config.write_text('time_budget = "ten"\n', encoding="utf-8")
    common = [*GPT_FLAGS, "--corpus", str(tiny_corpus_file), "--config", str(config)]
    assert train_main([*common, "--out", str(tmp_path / "bad.pt")]) == 1
    assert "--time-budget must be a number of minutes" in capsys.readouterr().err
    config.write_text("time_budget = 1\n[train]\nmax_iters = 5\n", encoding="utf-8")
    out = tmp_path / "good.pt"
    assert train_main([*common, "--out", str(out)]) == 0
    start = next(r for r in _records(out) if r["event"] == "start")
    assert "1 min (--time-budget, at most to step 5)" in start["summary"]["steps"]
    assert load_checkpoint(out, kind="gpt")["train_state"]["step"] == 5
