"""The run's JSON-lines metrics log and its loss-curve picture, both beside the checkpoint."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from textgen_core.training.png_file import save_png


def metrics_path(checkpoint: Path) -> Path:
    return checkpoint.with_suffix(".metrics.jsonl")


def plot_path(checkpoint: Path) -> Path:
    return checkpoint.with_suffix(".loss.png")


class MetricsLog:
    """Appends one JSON object per line; a fresh run starts the file anew, a resumed one appends."""

    def __init__(self, path: Path, fresh: bool, enabled: bool = True) -> None:
        self.path = path
        self.enabled = enabled  # only one process of a distributed run writes
        if not enabled:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        if fresh:
            path.write_text("", encoding="utf-8")

    def append(self, record: dict[str, Any]) -> None:
        if not self.enabled:
            return
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")


def read_metrics(path: Path) -> list[dict[str, Any]]:
    records = []
    if not path.exists():
        return records
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            continue  # a line cut short by a kill mid-write; the rest is still good
    return records


def plot_losses(records: list[dict[str, Any]], out: Path) -> None:
    """Train and validation loss against tokens seen, written atomically as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    evals = [r for r in records if r.get("event") == "eval"]
    if not evals:
        return
    tokens = [r["tokens"] for r in evals]
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    ax.plot(tokens, [r["train_loss"] for r in evals], marker="o", label="train")
    ax.plot(tokens, [r["val_loss"] for r in evals], marker="o", label="validation")
    ax.set_xlabel("tokens seen")
    ax.set_ylabel("cross-entropy loss (nats/token)")
    ax.set_title(f"{out.stem.removesuffix('.loss')}: loss against tokens seen")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    save_png(fig, out)
