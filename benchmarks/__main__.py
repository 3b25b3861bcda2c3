"""`python -m benchmarks` (or `nox -s bench`): the CPU set always, the GPU set when CUDA is present;
the hours-long frontier (benchmarks/frontier.py) only when named (`--only frontier`).

Every measured thing has a reference measured in the same run on the same machine; each table
shows value, reference and ratio, and the run is saved as JSON in benchmarks/results/ (one file
per run plus one line in history.jsonl).

To add a benchmark: write `benchmarks/<thing>.py` with a function returning `report.Row`s and
append a `Benchmark` to BENCHMARKS below.
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from rich.console import Console

from benchmarks import (
    batch_sampling,
    frontier,
    genai_speed,
    gpu_time_to_loss,
    gpu_training,
    markup_speed,
    report,
    sampling_scaling,
    sampling_speed,
    serving,
    training_scaling,
    training_speed,
    web_speed,
    window_quality,
)
from runtime.command_line import Parser


@dataclass
class Context:
    """What a benchmark gets: the parsed flags, a scratch folder, and `extra` for details that go
    into the JSON record (not the table)."""

    args: argparse.Namespace
    workdir: Path
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Benchmark:
    name: str  # for --only
    title: str
    run: Callable[[Context], list[report.Row]]
    needs_cuda: bool = False
    on_request: bool = False  # hours long: runs only when named with --only


def _sampling(ctx: Context) -> list[report.Row]:
    quick = ctx.args.quick
    rows, info = sampling_speed.run(ctx.workdir, new_tokens=ctx.args.new_tokens,
                                    repeats=1 if quick else 3, bound_rounds=2 if quick else 10)
    ctx.extra["sampling"] = info
    return rows


def _batch_sampling(ctx: Context) -> list[report.Row]:
    rows, info = batch_sampling.run(ctx.workdir, new_tokens=ctx.args.new_tokens,
                                    rounds=1 if ctx.args.quick else 5)
    ctx.extra["batch_sampling"] = info
    return rows


def _genai(ctx: Context) -> list[report.Row]:
    rows, info = genai_speed.run(ctx.workdir, new_tokens=ctx.args.new_tokens,
                                 rounds=2 if ctx.args.quick else 5)
    ctx.extra["genai"] = info
    return rows


def _markup(ctx: Context) -> list[report.Row]:
    rows, info = markup_speed.run()
    ctx.extra["markup"] = info
    return rows


def _serving(ctx: Context) -> list[report.Row]:
    rows, info = serving.run(ctx.workdir, new_tokens=min(ctx.args.new_tokens, 200),
                             streams=(1, 4) if ctx.args.quick else serving.STREAMS)
    ctx.extra["serving"] = info
    return rows


def _frontier(ctx: Context) -> list[report.Row]:
    rows, info = frontier.run(ctx.workdir, quick=ctx.args.quick, corpus=ctx.args.corpus,
                              budgets=ctx.args.budgets)
    ctx.extra["frontier"] = info
    return rows


def _budgets(text: str) -> tuple[float, ...]:
    try:
        minutes = tuple(float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: a comma list of minutes, e.g. 2,5,10") from None
    if not minutes or not all(0 < m < 10_000 for m in minutes):
        raise argparse.ArgumentTypeError(f"{text!r}: each budget must be in (0, 10000) minutes")
    return minutes


def _web(ctx: Context) -> list[report.Row]:
    rows, info = web_speed.run(ctx.workdir, new_tokens=ctx.args.new_tokens,
                               rounds=2 if ctx.args.quick else 5)
    ctx.extra["web"] = info
    return rows


BENCHMARKS: list[Benchmark] = [
    Benchmark("training", "CPU training: our step vs a nanoGPT-style eager loop",
              lambda ctx: training_speed.run_cpu(rounds=1 if ctx.args.quick else 3)),
    Benchmark("sampling", "CPU sampling, batch 1, fp32/int8, nanoGPT baby shape (6x384, ctx 256)",
              _sampling),
    Benchmark("batch-sampling", "CPU sampling, 8 sequences in one batch vs one (runtime fp32, 6x384)",
              _batch_sampling),
    Benchmark("genai", "CPU decoding, batch 1, greedy: our runtime vs onnxruntime-genai (6x384, "
                       "ctx 1024), paired rounds", _genai),
    Benchmark("serving", "Serving over HTTP with continuous batching: 1-16 concurrent streams vs "
                         "batch-1 decode (runtime fp32, 6x384)", _serving),
    Benchmark("sampling-scaling", "CPU sampling time per token vs context (runtime, 6x384)",
              lambda ctx: sampling_scaling.run(
                  ctx.workdir, lengths=(64, 256) if ctx.args.quick else sampling_scaling.LENGTHS)),
    Benchmark("training-scaling", "CPU training tokens/s vs width (cpu preset depth, ctx, batch)",
              lambda ctx: training_scaling.run(
                  widths=(64, 128) if ctx.args.quick else training_scaling.WIDTHS)),
    Benchmark("web", "Decoding in the browser: the web page vs the Python runtime (quick-start shape "
                     "4x128, ctx 128)", _web),
    Benchmark("frontier", "Bits per character on the validation split after --time-budget runs: "
                          "a grid of recipes vs nanoGPT's (quoted)", _frontier, on_request=True),
    Benchmark("markup", "Verbatim-copy markup of 10,000 characters against shakespeare", _markup),
    Benchmark("window-quality", "Held-out loss by full-window policy (models/gpt.pt, shakespeare val)",
              lambda ctx: window_quality.run(tokens_to_score=1000 if ctx.args.quick else 3000)),
    Benchmark("gpu-training", "GPU training step, baby shape and batch: ours vs nanoGPT-equivalent",
              lambda ctx: gpu_training.run(), needs_cuda=True),
    Benchmark("gpu-time-to-loss", "GPU time to val loss 1.30 on shakespeare, --preset fast",
              lambda ctx: gpu_time_to_loss.run(), needs_cuda=True),
]


def main(argv: list[str] | None = None) -> int:
    parser = Parser(prog="python -m benchmarks", description=__doc__,
                    formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", action="append", choices=[b.name for b in BENCHMARKS],
                        help="run only this benchmark (repeatable)")
    parser.add_argument("--new-tokens", type=int, default=500,
                        help="tokens sampled per timing (500: nanoGPT's sample.py default)")
    parser.add_argument("--quick", action="store_true",
                        help="fewer repeats and sizes: a smoke run, not numbers to quote")
    parser.add_argument("--corpus", metavar="SPEC", default="shakespeare",
                        help="frontier: the corpus to train on and score the validation split of "
                             "(default shakespeare)")
    parser.add_argument("--budgets", type=_budgets, metavar="MINUTES,...", default=None,
                        help="frontier: the --time-budget of each run (default 2,5,10; with "
                             "--quick 0.05,0.1)")
    args = parser.parse_args(argv)
    console = Console()
    machine = report.machine_info()
    console.print(f"{machine['cpu_model']}, {machine['cpu_cores']} cores, torch "
                  f"{machine['torch']}, {torch.get_num_threads()} torch threads, load average "
                  f"{machine['load_average']} at start, CUDA: {machine['cuda_device'] or 'none'}")
    rows: list[report.Row] = []
    extra: dict[str, Any] = {"machine": machine, "quick": args.quick}
    for bench in BENCHMARKS:
        if (args.only or bench.on_request) and bench.name not in (args.only or ()):
            continue
        if bench.needs_cuda and not torch.cuda.is_available():
            console.print(f"[dim]skipped {bench.name}: no CUDA device[/dim]")
            continue
        with tempfile.TemporaryDirectory() as tmp:
            ctx = Context(args, Path(tmp))
            result = report.with_ratios(bench.run(ctx))
        report.print_table(bench.title, result, console)
        rows += result
        extra.update(ctx.extra)
    extra["load_average_end"] = report.machine_info()["load_average"]
    saved = report.save_json(rows, extra)
    console.print(f"load average at the end {extra['load_average_end']}; results saved to {saved} "
                  f"and {report.HISTORY}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
