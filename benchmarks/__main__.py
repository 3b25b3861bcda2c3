"""`python -m benchmarks` (or `nox -s bench`): CPU benchmarks, GPU ones when CUDA is present.

Every measured thing has a reference measured in the same run on the same machine; the tables
show ratios, and a JSON copy goes to benchmarks/results/ for history.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import torch
from rich.console import Console

from benchmarks import report, sampling_speed, training_speed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--only", choices=["sampling", "training"], help="run one group")
    parser.add_argument("--new-tokens", type=int, default=200, help="tokens sampled per timing")
    args = parser.parse_args(argv)
    console = Console()
    console.print(f"torch {torch.__version__}, {os.cpu_count()} CPUs, "
                  f"{torch.get_num_threads()} torch threads")
    rows: list[report.Row] = []
    extra: dict = {"torch": torch.__version__, "cpus": os.cpu_count()}
    if args.only in (None, "training"):
        training = report.with_ratios(training_speed.run("cpu", device="cpu"))
        report.print_table("CPU training (cpu preset)", training, console)
        rows += training
    if args.only in (None, "sampling"):
        with tempfile.TemporaryDirectory() as tmp:
            sampling, info = sampling_speed.run(Path(tmp), new_tokens=args.new_tokens)
        sampling = report.with_ratios(sampling)
        report.print_table("CPU sampling, batch 1, nanoGPT baby shape (6x384, ctx 256)",
                           sampling, console)
        rows += sampling
        extra["sampling"] = info
    saved = report.save_json(rows, extra)
    console.print(f"results saved to {saved}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
