"""The quality-per-time frontier on this machine's CPU cores (issue 30): a grid of recipes, each
trained through the real command (`python -m textgen_core.train ... --time-budget MINUTES`) for
each wall-clock budget, and scored on the whole validation split of the corpus in bits per
character (textgen_core/evaluate.py's `split_score`, the measure that compares tokenizers).

The recipes vary one thing at a time from the quick start's (`--preset cpu`: char, 4 layers x
128, context 128, batch 32, AdamW): the tokenizer (bpe at 512 and 2048 tokens), the shape (6 x
192), the optimizer (Muon), batch and context (64 x 256), and one combination. A budget's run is
its own run (a schedule planned for 10 minutes is not the 5-minute one's, continued), so the full
grid costs the sum of its budgets times the recipes: 7 x 17 minutes, about two hours, on idle
cores. `--quick` trains two nano recipes for seconds each: a smoke run, not numbers to quote.

nanoGPT's figures for shakespeare's characters are quoted, not re-measured: its A100 result
(1.4697 nats/char = 2.120 bits/char, ~3 minutes, 10.6 M parameters) and its CPU recipe's (1.88
nats/char = 2.71 bits/char, ~3 minutes). Writes a table (Markdown) and a plot (bits/char against
training seconds, a line per recipe, the two references as horizontal marks) beside the JSON
results, through the project's file writer.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from benchmarks import report
from benchmarks.report import Row
from runtime.atomic_file import write_atomic
from textgen_core.training.metrics_log import save_png

NANOGPT_A100 = "nanoGPT, A100, 10.6M params, ~3 min (quoted)"
NANOGPT_CPU = "nanoGPT's CPU recipe, ~3 min (quoted)"
NANOGPT_A100_BITS = 1.4697 / math.log(2)  # 2.120
NANOGPT_CPU_BITS = 1.88 / math.log(2)  # 2.71
BUDGETS = (2.0, 5.0, 10.0)  # minutes
QUICK_BUDGETS = (0.05, 0.1)


@dataclass(frozen=True)
class Recipe:
    name: str
    flags: tuple[str, ...]  # train flags besides --corpus, --out, --time-budget, --device


CPU = ("--preset", "cpu")
RECIPES = (
    Recipe("char 4x128 adamw b32x128", CPU),
    Recipe("bpe-512 4x128 adamw b32x128", (*CPU, "--tokenizer", "bpe", "--vocab-size", "512")),
    Recipe("bpe-2048 4x128 adamw b32x128", (*CPU, "--tokenizer", "bpe", "--vocab-size", "2048")),
    Recipe("char 6x192 adamw b32x128", (*CPU, "--n-layer", "6", "--n-head", "6", "--n-embd", "192")),
    Recipe("char 4x128 muon b32x128", (*CPU, "--optimizer", "muon")),
    Recipe("char 4x128 adamw b64x256", (*CPU, "--batch-size", "64", "--block-size", "256")),
    Recipe("bpe-2048 6x192 muon b32x128", (*CPU, "--tokenizer", "bpe", "--vocab-size", "2048",
                                           "--n-layer", "6", "--n-head", "6", "--n-embd", "192",
                                           "--optimizer", "muon")),
)
NANO = ("--preset", "nano", "--eval-iters", "2")
QUICK_RECIPES = (
    Recipe("char nano adamw", NANO),
    Recipe("bpe-300 nano muon", (*NANO, "--tokenizer", "bpe", "--vocab-size", "300", "--optimizer", "muon")),
)


@dataclass
class Point:
    """One recipe trained for one budget and scored."""

    recipe: str
    budget_s: float
    wall_s: float  # the whole command: setup, the loop, the final evaluation and save
    steps: int
    params: int
    tokenizer: str
    val_tokens: int
    loss: float  # nats per token on the whole validation split
    bits_per_char: float


def train_and_score(recipe: Recipe, minutes: float, corpus: str, workdir: Path) -> Point:
    from textgen_core.data.corpus import resolve_corpus
    from textgen_core.evaluate import split_score
    from textgen_core.models.gpt import gpt_from_checkpoint
    from textgen_core.train import main as train_main
    from textgen_core.training.checkpoint import load_checkpoint

    out = workdir / f"{recipe.name.replace(' ', '_')}-{minutes:g}min.pt"
    argv = [*recipe.flags, "--corpus", corpus, "--out", str(out), "--time-budget", f"{minutes:g}",
            "--device", "cpu", "--sample-tokens", "0", "--overwrite"]
    started = time.perf_counter()
    code = train_main(argv)
    wall = time.perf_counter() - started
    if code != 0:
        raise RuntimeError(f"python -m textgen_core.train {' '.join(argv)} exited with {code}")
    payload = load_checkpoint(out, kind="gpt")
    model, tokenizer = gpt_from_checkpoint(payload)
    score = split_score(model, tokenizer, resolve_corpus(corpus, None), "val", device=torch.device("cpu"))
    return Point(recipe=recipe.name, budget_s=minutes * 60, wall_s=wall,
                 steps=payload["train_state"]["step"], params=model.num_parameters(),
                 tokenizer=f"{payload['tokenizer'].get('type', '?')} {tokenizer.vocab_size}",
                 val_tokens=score.tokens, loss=score.loss, bits_per_char=score.bits_per_char)


def run(workdir: Path, *, quick: bool = False, corpus: str = "shakespeare",
        budgets: tuple[float, ...] | None = None) -> tuple[list[Row], dict[str, Any]]:
    """Every recipe for every budget; the rows, and the points with the files written."""
    recipes = QUICK_RECIPES if quick else RECIPES
    budgets = budgets or (QUICK_BUDGETS if quick else BUDGETS)
    points = [train_and_score(recipe, minutes, corpus, workdir)
              for recipe in recipes for minutes in budgets]
    rows = [Row("frontier", NANOGPT_A100, NANOGPT_A100_BITS, "bits/char", note="1.4697 nats/char"),
            Row("frontier", NANOGPT_CPU, NANOGPT_CPU_BITS, "bits/char", note="1.88 nats/char")]
    rows += [Row("frontier", f"{p.recipe}, {p.budget_s / 60:g} min", p.bits_per_char, "bits/char",
                 reference=NANOGPT_A100, note=f"{p.steps:,} steps, {p.params / 1e6:.2f}M params, "
                                              f"{p.wall_s:.0f} s wall")
             for p in points]
    stamp = time.strftime("%Y%m%d-%H%M%S")
    folder = report.RESULTS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    table, plot = folder / f"frontier-{stamp}.md", folder / f"frontier-{stamp}.png"
    write_atomic(table, markdown_table(points, corpus).encode("utf-8"))
    draw(points, corpus, plot)
    return rows, {"corpus": corpus, "points": [asdict(p) for p in points], "table": str(table),
                  "plot": str(plot)}


def markdown_table(points: list[Point], corpus: str) -> str:
    lines = [f"Validation bits per character on {corpus} (whole split) after a --time-budget run, "
             f"{report.machine_info()['cpu_model']}, {torch.get_num_threads()} torch threads.",
             "", "| recipe | budget | bits/char | vs nanoGPT A100 (2.120) | steps | params | "
             "tokenizer | wall s |", "|---|---:|---:|---:|---:|---:|---|---:|"]
    for p in points:
        lines.append(f"| {p.recipe} | {p.budget_s / 60:g} min | {p.bits_per_char:.3f} | "
                     f"{p.bits_per_char - NANOGPT_A100_BITS:+.3f} | {p.steps:,} | "
                     f"{p.params / 1e6:.2f}M | {p.tokenizer} | {p.wall_s:.0f} |")
    return "\n".join(lines) + "\n"


def draw(points: list[Point], corpus: str, out: Path) -> None:
    """Bits/char against training seconds, one line per recipe, nanoGPT's as horizontal marks."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5), dpi=110)
    for recipe in dict.fromkeys(p.recipe for p in points):
        mine = sorted((p for p in points if p.recipe == recipe), key=lambda p: p.budget_s)
        ax.plot([p.budget_s for p in mine], [p.bits_per_char for p in mine], marker="o", label=recipe)
    for bits, name, style in ((NANOGPT_A100_BITS, NANOGPT_A100, "--"), (NANOGPT_CPU_BITS, NANOGPT_CPU, ":")):
        ax.axhline(bits, color="black", linestyle=style, linewidth=1)
        ax.annotate(f"{name}: {bits:.3f}", (0.01, bits), xycoords=("axes fraction", "data"),
                    textcoords="offset points", xytext=(0, 3), fontsize=8)
    ax.set_xlabel("training budget (seconds of wall clock, --time-budget)")
    ax.set_ylabel("validation bits per character")
    ax.set_title(f"{corpus}: quality per CPU time", parse_math=False)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_png(fig, out)
