"""`python -m benchmarks.gpu_check` (or `nox -s gpu`): every GPU path of the project in one
prepared run of under 8 minutes, for the few minutes a CUDA machine is lent.

1. train: each family (gpt, gan, stack) a few hundred steps with the GPU defaults (compile on,
   bf16 autocast where the family has it), through `textgen_core.train.main`; the loss must fall
   (the GAN's: the held-out NLL of its MLE warm-up); then each run is resumed once.
2. export: each checkpoint to ONNX through `export.cli.export_checkpoint`, which checks parity
   against torch itself and fails when it does not hold.
3. step: the baby-shape training step against the nanoGPT-equivalent reference
   (benchmarks/gpu_training.py): tokens/s, the ratio (target >= 1.5x) and MFU.
4. time to loss: `--preset fast` to validation loss 1.30 on shakespeare
   (benchmarks/gpu_time_to_loss.py), compile time apart (target <= 15 s of training).
5. everything goes to one JSON file and a table.

Each part has a time budget. At the budget the part gets a SIGINT, which a training loop takes as
Ctrl-C (it stops at the next step boundary and saves); GRACE_S later a second one interrupts
whatever runs. The part then reports "not reached", and every failure is one line in the JSON;
the run goes on with the next part either way.

`--dry-run`: the same code on the CPU with tiny shapes, a few steps and a tiny corpus written to
a temporary folder, in well under a minute (tests/benchmarks/test_gpu_check.py runs it, so the
script cannot rot between lent accelerators).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import math
import os
import random
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.table import Table

from benchmarks import gpu_time_to_loss, gpu_training, report
from runtime.atomic_file import write_atomic
from runtime.command_line import Parser
from textgen_core.training.cli_outcome import EXIT_INTERRUPTED
from textgen_core.training.loop import STEP_LIMIT_ENV
from textgen_core.training.metrics_log import metrics_path, read_metrics

PARTS = ("train", "export", "step", "time_to_loss")
FAMILIES = ("gpt", "gan", "stack")
STACK_LAYERS = Path(__file__).resolve().parents[1] / "examples" / "stacks" / "small_transformer.toml"
GRACE_S = 30.0
STEP_TARGET = 1.5  # the baby-shape step, ours / nanoGPT-equivalent (issue 7)


@dataclass(frozen=True)
class Plan:
    """What each part runs: the GPU plan, or the dry run's tiny version of it."""

    device: str
    corpus: str | None  # None: the dry run writes its own corpus
    train_flags: dict[str, list[str]]  # per family: the flags after --model/--out/--corpus
    train_steps: dict[str, int]
    resume_steps: int  # steps added by the resumed run
    step_preset: str
    step_rounds: int
    step_block: int
    fast_preset: str
    fast_max_iters: int | None
    budgets: dict[str, float]  # seconds, per family ("train:gpt") and per later part
    total_budget: float


GPU_PLAN = Plan(
    device="cuda",
    corpus="shakespeare",
    train_flags={
        # The baby preset, its dropout and bf16 autocast; fewer, cheaper evaluations.
        "gpt": ["--preset", "baby", "--eval-interval", "100", "--eval-iters", "20",
                "--sample-tokens", "0"],
        # The GAN's default shape and recipe; 150 MLE warm-up steps (eager: the warm-up calls
        # the generator's teacher-forced path), then 50 compiled adversarial ones.
        "gan": ["--mle-iters", "150", "--eval-interval", "50", "--log-interval", "10"],
        "stack": ["--layers", str(STACK_LAYERS), "--eval-interval", "100", "--eval-iters", "10",
                  "--sample-tokens", "0"],
    },
    train_steps={"gpt": 300, "gan": 200, "stack": 300},
    resume_steps=20,
    step_preset="baby", step_rounds=4, step_block=20,
    fast_preset="fast", fast_max_iters=None,
    # The GAN's share holds its sentence split of shakespeare twice (train, resume; ~10 s each)
    # and the compile of its unrolled generator.
    budgets={"train:gpt": 65, "train:gan": 130, "train:stack": 45, "export": 60, "step": 60,
             "time_to_loss": 100},
    total_budget=460,
)

DRY_PLAN = Plan(
    device="cpu",
    corpus=None,
    train_flags={
        "gpt": ["--preset", "nano", "--n-layer", "1", "--n-embd", "16", "--block-size", "16",
                "--batch-size", "4", "--warmup-iters", "1", "--eval-interval", "4",
                "--eval-iters", "2", "--sample-tokens", "0"],
        "gan": ["--seq-len", "8", "--vocab-size", "40", "--n-embd", "16", "--n-head", "2",
                "--ffn-hidden", "32", "--n-mapping", "1", "--n-noise-blocks", "1",
                "--n-output-blocks", "0", "--critic-layers", "1", "--batch-size", "8",
                "--critic-steps", "1", "--mle-iters", "8", "--mle-learning-rate", "3e-3",
                "--eval-interval", "4", "--log-interval", "2"],
        "stack": ["--layers", str(STACK_LAYERS), "--preset", "nano", "--n-embd", "16",
                  "--block-size", "16", "--batch-size", "4", "--warmup-iters", "1",
                  "--eval-interval", "4", "--eval-iters", "2", "--sample-tokens", "0"],
    },
    train_steps={"gpt": 8, "gan": 12, "stack": 8},
    resume_steps=2,
    step_preset="nano", step_rounds=1, step_block=2,
    fast_preset="nano", fast_max_iters=10,
    # Hang guards only: a dry run that comes near them is broken, not slow.
    budgets={"train:gpt": 120, "train:gan": 120, "train:stack": 120, "export": 120, "step": 120,
             "time_to_loss": 120},
    total_budget=600,
)


def dry_run_text() -> str:
    """Short sentences from a small grammar: characters for the GPT and the stack, words for
    the GAN; about 7 kB, like the tests' corpora."""
    rng = random.Random(0)
    subjects = ["the cat", "a dog", "my friend", "the king", "his horse", "our queen"]
    verbs = ["sees", "likes", "follows", "finds", "loves", "fears"]
    objects = ["the moon", "a bird", "the sea", "her brother", "the castle", "a ghost"]
    lines = [f"{rng.choice(subjects).capitalize()} {rng.choice(verbs)} {rng.choice(objects)}."
             for _ in range(300)]
    return "\n".join(lines) + "\n"


# --- time budgets -------------------------------------------------------------------------------

class BudgetSpent(Exception):
    """A part ran out of its time budget."""


class TimeBudget:
    """SIGINT to this process at `seconds` (a training loop stops at its next step boundary and
    saves, as on Ctrl-C) and again GRACE_S later (interrupts anything). Main thread only."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expired = False
        self._closed = False
        self._lock = threading.Lock()
        self._timers = [threading.Timer(delay, self._interrupt) for delay in (seconds, seconds + GRACE_S)]

    def _interrupt(self) -> None:
        with self._lock:
            if self._closed:
                return
            self.expired = True
            os.kill(os.getpid(), signal.SIGINT)

    def _handle(self, signum: int, frame: object) -> None:
        if self.expired:
            raise BudgetSpent(f"time budget {self.seconds:.0f} s spent")
        raise KeyboardInterrupt  # the user's Ctrl-C

    def __enter__(self) -> TimeBudget:
        self._previous = signal.signal(signal.SIGINT, self._handle)
        for timer in self._timers:
            timer.daemon = True
            timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self._closed = True
        for timer in self._timers:
            timer.cancel()
        signal.signal(signal.SIGINT, self._previous)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or "(no message)"
    return f"{type(exc).__name__}: {text[:300]}"


def run_part(budget_s: float, work: Callable[[TimeBudget], dict[str, Any]]) -> dict[str, Any]:
    """`work`'s record with `seconds` added; an exception or a spent budget becomes its status."""
    t0 = time.perf_counter()
    budget = TimeBudget(budget_s)
    try:
        with budget:
            record = work(budget)
    except (BudgetSpent, KeyboardInterrupt):
        if not budget.expired:
            raise
        record = {"status": f"not reached: time budget {budget_s:.0f} s spent"}
    except Exception as exc:  # the check goes on with the next part; the error is recorded
        status = "not reached" if budget.expired else "failed"
        record = {"status": f"{status}: {_one_line(exc)}"}
    record["seconds"] = round(time.perf_counter() - t0, 1)
    record["budget_s"] = budget_s
    return record


@contextlib.contextmanager
def _stderr_kept(lines: list[str]) -> Iterator[None]:
    """The command's stderr (its one-line errors and notes), kept for the JSON and then shown."""
    buffer = io.StringIO()
    real = sys.stderr
    try:
        with contextlib.redirect_stderr(buffer):
            yield
    finally:
        text = buffer.getvalue()
        real.write(text)
        lines.extend(line for line in text.splitlines() if line.strip())


# --- part 1: train and resume -----------------------------------------------------------------

def _train_cli(argv: list[str]) -> tuple[int, list[str]]:
    from textgen_core.train import main

    errors: list[str] = []
    with _stderr_kept(errors):
        code = main(argv)
    return code, errors


def _evals(out: Path, family: str) -> list[tuple[int, float]]:
    """(step, held-out loss) of each evaluation: val loss, or the GAN's NLL during its warm-up."""
    points = []
    for record in read_metrics(metrics_path(out)):
        if record.get("event") != "eval":
            continue
        if family == "gan":
            if record.get("phase") == "mle":
                points.append((record["step"], record["val_nll"]))
        else:
            points.append((record["step"], record["val_loss"]))
    return [(step, loss) for step, loss in points if math.isfinite(loss)]


def _saved_step(out: Path) -> int:
    from textgen_core.training.checkpoint import load_checkpoint

    return int(load_checkpoint(out)["train_state"]["step"])


def train_family(plan: Plan, family: str, corpus: str, workdir: Path, budget: TimeBudget) -> dict[str, Any]:
    out = workdir / f"{family}.pt"
    steps = plan.train_steps[family]
    common = ["--model", family, "--out", str(out), "--device", plan.device]
    argv = [*common, "--corpus", corpus, "--max-iters", str(steps), *plan.train_flags[family]]
    record: dict[str, Any] = {"checkpoint": str(out), "argv": argv}
    t0 = time.perf_counter()
    torch._dynamo.reset()  # each family compiles from scratch, as a fresh run does
    code, errors = _train_cli(argv)
    record["train_seconds"] = round(time.perf_counter() - t0, 1)
    if code not in (0, EXIT_INTERRUPTED):
        return {**record, "status": f"failed: exit {code}: {errors[-1] if errors else 'no message'}"}
    record["steps"] = _saved_step(out)
    start = next((r for r in read_metrics(metrics_path(out)) if r.get("event") == "start"), {})
    record["amp"] = start.get("amp", "fp32 (no autocast in this family)")
    points = _evals(out, family)
    if len(points) >= 2:
        (first_step, first), (last_step, last) = points[0], points[-1]
        record.update(first_eval=[first_step, round(first, 4)], last_eval=[last_step, round(last, 4)],
                      loss_falls=last < first)
    if family == "gan":
        adversarial = [r for r in read_metrics(metrics_path(out))
                       if r.get("event") == "train" and r.get("phase") == "adversarial"]
        record["adversarial_logged"] = len(adversarial)
        record["adversarial_finite"] = bool(adversarial) and all(
            math.isfinite(r["d_loss"]) and math.isfinite(r["gp"]) for r in adversarial)
    if budget.expired:
        return {**record, "status": f"not reached: stopped by the time budget at step {record['steps']} "
                                    f"of {steps}"}
    if code == EXIT_INTERRUPTED:
        return {**record, "status": f"not reached: interrupted (Ctrl-C) at step {record['steps']}"}
    if "loss_falls" not in record:
        return {**record, "status": "failed: fewer than two evaluations to compare"}
    if not record["loss_falls"]:
        return {**record, "status": f"failed: loss did not fall ({first:.3f} -> {last:.3f})"}
    if family == "gan" and not record["adversarial_finite"]:
        return {**record, "status": "failed: no finite adversarial step was logged"}

    target = steps + plan.resume_steps
    t0 = time.perf_counter()
    code, errors = _train_cli([*common, "--resume", "--max-iters", str(target)])
    resume: dict[str, Any] = {"seconds": round(time.perf_counter() - t0, 1)}
    if code == 0:
        resume["steps"] = _saved_step(out)
        resume["status"] = "ok" if resume["steps"] == target else (
            f"failed: resumed run ended at step {resume['steps']}, not {target}")
    elif budget.expired:
        resume["status"] = "not reached: stopped by the time budget"
    elif code == EXIT_INTERRUPTED:
        resume["status"] = "not reached: interrupted (Ctrl-C)"
    else:
        resume["status"] = f"failed: exit {code}: {errors[-1] if errors else 'no message'}"
    record["resume"] = resume
    record["status"] = "ok" if resume["status"] == "ok" else f"resume {resume['status']}"
    return record


# --- part 2: export ----------------------------------------------------------------------------

def export_family(checkpoint: Path) -> dict[str, Any]:
    from export.cli import export_checkpoint

    lines: list[str] = []
    # As `python -m export` does: no autograd, and no line per missing torchvision operator.
    logging.getLogger("torch.onnx._internal.exporter._registration").setLevel(logging.ERROR)
    with torch.no_grad():
        (written,) = export_checkpoint(str(checkpoint), "onnx", report=lines.append)
    return {"status": "ok", "file": str(written), "bytes": written.stat().st_size, "report": lines}


# --- part 3: the baby-shape step ---------------------------------------------------------------

def step_benchmark(plan: Plan) -> dict[str, Any]:
    torch._dynamo.reset()
    rows = report.with_ratios(gpu_training.run(plan.step_preset, rounds=plan.step_rounds,
                                               block=plan.step_block, device=plan.device))
    reference, ours = rows[0], rows[1]
    mfu = next((r for r in rows if r.unit == "%"), None)
    ratio = ours.ratio or 0.0
    return {"status": "ok", "preset": plan.step_preset, "reference_tok_s": round(reference.value),
            "ours_tok_s": round(ours.value), "ratio": round(ratio, 3), "target_ratio": STEP_TARGET,
            "target_met": ratio >= STEP_TARGET,
            "mfu_percent": round(mfu.value, 1) if mfu else None,
            "mfu_note": mfu.note if mfu else f"skipped: no known bf16 peak for {plan.device}",
            "rows": [asdict(r) for r in rows]}


# --- part 4: time to loss ----------------------------------------------------------------------

def time_to_loss(plan: Plan, corpus: str, budget: TimeBudget) -> dict[str, Any]:
    torch._dynamo.reset()
    result = gpu_time_to_loss.measure(plan.fast_preset, device=plan.device, corpus=corpus,
                                      max_iters=plan.fast_max_iters)
    record = {**asdict(result), "target_loss": gpu_time_to_loss.TARGET_LOSS,
              "target_seconds": gpu_time_to_loss.TARGET_SECONDS}
    if result.hit_seconds is None:
        record["status"] = (f"not reached: best val {result.best_val_loss:.3f} after {result.steps} "
                            "steps" + (" (time budget spent)" if budget.expired else ""))
    else:
        record["status"] = "ok"
        record["target_met"] = result.hit_seconds <= gpu_time_to_loss.TARGET_SECONDS
    return record


# --- the run -----------------------------------------------------------------------------------

def run(plan: Plan, parts: tuple[str, ...], workdir: Path, corpus: str,
        say: Callable[[str], None]) -> dict[str, Any]:
    started = time.perf_counter()
    results: dict[str, Any] = {}

    def budget(name: str) -> float:
        left = plan.total_budget - (time.perf_counter() - started)
        return max(1.0, min(plan.budgets[name], left))

    def skipped(reason: str) -> dict[str, Any]:
        return {"status": f"skipped: {reason}"}

    if "train" in parts:
        results["train"] = {}
        for family in FAMILIES:
            seconds = budget(f"train:{family}")
            say(f"part 1, train {family} (budget {seconds:.0f} s)")
            results["train"][family] = run_part(
                seconds, lambda b, f=family: train_family(plan, f, corpus, workdir, b))
    if "export" in parts:
        results["export"] = {}
        seconds = budget("export")
        deadline = time.perf_counter() + seconds
        for family in FAMILIES:
            checkpoint = workdir / f"{family}.pt"
            left = deadline - time.perf_counter()
            if not checkpoint.is_file():
                results["export"][family] = skipped("no checkpoint (part 1 did not write one)")
            elif left < 1:
                results["export"][family] = skipped(f"the export budget ({seconds:.0f} s) is spent")
            else:
                say(f"part 2, export {family} to ONNX (budget {left:.0f} s)")
                results["export"][family] = run_part(left, lambda b, c=checkpoint: export_family(c))
    if "step" in parts:
        seconds = budget("step")
        say(f"part 3, {plan.step_preset}-shape step vs the nanoGPT-equivalent (budget {seconds:.0f} s)")
        results["step"] = run_part(seconds, lambda b: step_benchmark(plan))
    if "time_to_loss" in parts:
        seconds = budget("time_to_loss")
        say(f"part 4, --preset {plan.fast_preset} to val {gpu_time_to_loss.TARGET_LOSS} "
            f"(budget {seconds:.0f} s)")
        results["time_to_loss"] = run_part(seconds, lambda b: time_to_loss(plan, corpus, b))
    for name in PARTS:
        results.setdefault(name, skipped("not selected (--only)"))
    return results


def _summary(part: str, record: dict[str, Any]) -> str:
    """One cell of the table: the figures of a part's record."""
    if part == "train" and "steps" in record:
        text = f"{record['steps']} steps in {record['train_seconds']:.0f} s"
        if "first_eval" in record:
            text += f", loss {record['first_eval'][1]:.3f} -> {record['last_eval'][1]:.3f}"
        if "resume" in record and "steps" in record["resume"]:
            text += f"; resumed to {record['resume']['steps']} in {record['resume']['seconds']:.0f} s"
        return text
    if part == "export" and "report" in record:  # the parity lines, after "wrote FILE (SIZE)"
        return " ".join(line.strip() for line in record["report"][1:]) or record["report"][0]
    if part == "step" and "ratio" in record:
        met = "met" if record["target_met"] else "missed"
        mfu = f"MFU {record['mfu_percent']}%" if record["mfu_percent"] is not None else record["mfu_note"]
        return (f"ours {record['ours_tok_s']:,} tok/s vs {record['reference_tok_s']:,}: "
                f"{record['ratio']:.2f}x (target {STEP_TARGET}x: {met}); {mfu}")
    if part == "time_to_loss" and "compile_s" in record:
        if record["hit_seconds"] is None:
            text = f"best val {record['best_val_loss']:.3f} in {record['seconds']:.1f} s"
        else:
            met = "met" if record["target_met"] else "missed"
            text = (f"val {record['hit_val_loss']:.3f} at step {record['hit_step']} after "
                    f"{record['hit_seconds']:.1f} s (target {record['target_seconds']:.0f} s: {met})")
        return f"{text}; compile {record['compile_s']:.1f} s apart"
    return ""


def print_table(results: dict[str, Any], console: Console, title: str) -> None:
    table = Table(title=title, title_justify="left")
    for column in ("part", "item", "figures", "seconds", "status"):
        table.add_column(column, justify="right" if column == "seconds" else "left")
    for part in PARTS:
        records = results[part]
        per_family = part in ("train", "export") and "status" not in records
        items = records.items() if per_family else [("", records)]
        for item, record in items:
            table.add_row(part, item, _summary(part, record), f"{record.get('seconds', 0):.0f}",
                          record["status"])
    console.print(table)


def main(argv: list[str] | None = None) -> int:
    parser = Parser(prog="python -m benchmarks.gpu_check", description=__doc__,
                    formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dry-run", action="store_true",
                        help="tiny shapes, a few steps, CPU, a tiny corpus: proves the script runs")
    parser.add_argument("--json", metavar="PATH",
                        help="where to write the results (default benchmarks/results/gpu-check-<time>.json)")
    parser.add_argument("--only", action="append", choices=PARTS,
                        help="run only this part (repeatable; export needs train's checkpoints)")
    parser.add_argument("--corpus", metavar="SPEC",
                        help="corpus of parts 1 and 4 (default shakespeare; the dry run writes its own)")
    args = parser.parse_args(argv)
    console = Console()
    plan = DRY_PLAN if args.dry_run else GPU_PLAN
    parts = tuple(args.only) if args.only else PARTS
    machine = report.machine_info()
    record: dict[str, Any] = {"dry_run": args.dry_run, "device": plan.device, "machine": machine,
                              "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
                              "budget_s": plan.total_budget}
    if plan.device == "cuda" and not torch.cuda.is_available():
        record["parts"] = {name: {"status": "skipped: PyTorch sees no CUDA device (use --dry-run)"}
                           for name in PARTS}
    else:
        console.print(f"gpu_check{' --dry-run' if args.dry_run else ''}: {plan.device}, "
                      f"{machine['cuda_device'] or machine['cpu_model']}, torch {machine['torch']}")
        threads = torch.get_num_threads()
        if args.dry_run:  # tiny shapes gain nothing from threads, and lose much on a busy machine
            torch.set_num_threads(1)
        with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
            workdir = Path(tmp)
            corpus = args.corpus or plan.corpus
            if corpus is None:
                corpus_file = workdir / "corpus.txt"
                write_atomic(corpus_file, dry_run_text().encode("utf-8"))
                corpus = str(corpus_file)
            record["corpus"] = corpus
            # The check sets its own step counts; a step limit meant for other commands would cut
            # its runs short and fail its checks.
            step_limit = os.environ.pop(STEP_LIMIT_ENV, None)
            if step_limit is not None:
                console.print(f"note: {STEP_LIMIT_ENV}={step_limit} is ignored by the check")
            started = time.perf_counter()
            try:
                record["parts"] = run(plan, parts, workdir, corpus,
                                      lambda line: console.print(f"[bold]{line}[/bold]"))
            finally:
                torch.set_num_threads(threads)
                if step_limit is not None:
                    os.environ[STEP_LIMIT_ENV] = step_limit
            record["total_seconds"] = round(time.perf_counter() - started, 1)
    path = Path(args.json) if args.json else (
        report.RESULTS_DIR / f"gpu-check-{time.strftime('%Y%m%d-%H%M%S')}.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, (json.dumps(record, indent=2, default=str) + "\n").encode("utf-8"))
    total = record.get("total_seconds")
    print_table(record["parts"], console,
                f"GPU check{' (dry run)' if args.dry_run else ''}"
                + (f": {total:.0f} s of {plan.total_budget:.0f} s" if total is not None else ""))
    console.print(f"results saved to {path}")
    failed = [part for part, status in statuses(record["parts"]) if status.startswith("failed")]
    return 1 if failed else 0


def statuses(parts: dict[str, Any]) -> list[tuple[str, str]]:
    """(part or part:family, status) of every record."""
    out = []
    for part in PARTS:
        records = parts[part]
        if part in ("train", "export") and "status" not in records:
            out += [(f"{part}:{family}", r["status"]) for family, r in records.items()]
        else:
            out.append((part, records["status"]))
    return out


if __name__ == "__main__":
    raise SystemExit(main())
