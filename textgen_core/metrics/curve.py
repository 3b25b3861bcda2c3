"""The quality/diversity curve: each model's sentences measured over a sweep of temperatures,
as one line per model on the plane of self-BLEU-4 (diversity, lower is more diverse) against
BLEU-4 (quality), with the unigram baseline and the held-out real sentences as points.

Comparing models at one temperature flatters whichever is sharper; across a sweep, one model's
curve lying above another's (higher BLEU-4 at equal self-BLEU-4) is the claim worth making
("Language GANs Falling Short", Caccia et al., ICLR 2020).
"""

from __future__ import annotations

import math
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

from runtime.atomic_file import write_atomic
from runtime.terminal_text import sanitize
from textgen_core.metrics.report import Row
from textgen_core.training.metrics_log import save_png

ORDER = 4  # the n of the plotted BLEU-n and self-BLEU-n


@dataclass
class Series:
    """One model's rows, one per temperature, in sweep order."""

    name: str
    temperatures: list[float] = field(default_factory=list)
    rows: list[Row] = field(default_factory=list)


def curve_paths(prefix: str | Path) -> tuple[Path, Path]:
    """The table (PREFIX.md) and the plot (PREFIX.png)."""
    prefix = Path(prefix)
    return prefix.with_name(prefix.name + ".md"), prefix.with_name(prefix.name + ".png")


def plot_curve(series: list[Series], points: list[Row], out: Path, title: str) -> None:
    """Self-BLEU-4 (x) against BLEU-4 (y): a line per series, each point labelled with its
    temperature; `points` (the baseline, the real sentences) as single markers."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.8), dpi=110)
    for s in series:
        xs = [r.self_bleu[ORDER] for r in s.rows]
        ys = [r.bleu[ORDER] for r in s.rows]
        ax.plot(xs, ys, marker="o", label=sanitize(s.name))
        for t, x, y in zip(s.temperatures, xs, ys, strict=True):
            if math.isfinite(x) and math.isfinite(y):
                ax.annotate(f"T={t:g}", (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
    for row, marker in zip(points, ("x", "*", "s", "^"), strict=False):
        ax.plot([row.self_bleu[ORDER]], [row.bleu[ORDER]], marker=marker, markersize=10,
                linestyle="none", label=sanitize(row.name))
    ax.set_xlabel(f"self-BLEU-{ORDER} (lower: more diverse)")
    ax.set_ylabel(f"BLEU-{ORDER} against held-out sentences (higher: better)")
    # the title holds file names: plain text, never matplotlib's `$...$` math
    # wrapped: several models' names make a title wider than the figure
    ax.set_title("\n".join(textwrap.wrap(sanitize(title), 90)), parse_math=False, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_png(fig, out)


def write_curve(prefix: str | Path, table: str, series: list[Series], points: list[Row],
                title: str) -> tuple[Path, Path]:
    """Write the Markdown table and the plot, each atomically; returns their paths."""
    md, png = curve_paths(prefix)
    write_atomic(md, (table + "\n").encode("utf-8"))
    plot_curve(series, points, png, title)
    return md, png
