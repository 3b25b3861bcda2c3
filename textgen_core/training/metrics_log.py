"""The run's JSON-lines metrics log and its loss-curve pictures, both beside the checkpoint.

The GAN's picture shows both players' losses, and the
held-out NLL with the critic's Wasserstein estimate, against generator steps.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from runtime.atomic_file import append_file, atomic_file, describe_os_error, write_atomic
from runtime.regular_file import open_regular
from runtime.terminal_text import sanitize
from textgen_core.errors import CheckpointError


def metrics_path(checkpoint: Path) -> Path:
    return checkpoint.with_suffix(".metrics.jsonl")


def plot_path(checkpoint: Path) -> Path:
    return checkpoint.with_suffix(".loss.png")


class MetricsLog:
    """Appends one JSON object per line. A fresh run starts the file anew; a resumed one first
    drops the records of steps after `resume_step` (written between the checkpoint it resumes
    and the moment the earlier run was killed), so each step is logged once."""

    def __init__(self, path: Path, fresh: bool, enabled: bool = True, resume_step: int = 0,
                 mirrors: tuple[str, ...] = ()) -> None:
        self.path = path
        self.enabled = enabled  # only one process of a distributed run writes
        self.mirrors: list[Any] = []  # --log tensorboard|wandb: each record written there too
        if not enabled:
            return
        if mirrors:
            from textgen_core.training.log_mirrors import open_mirrors

            base = path.with_name(path.name.removesuffix(".metrics.jsonl"))
            self.mirrors = open_mirrors(mirrors, base, fresh)
        with _reported(path):
            path.parent.mkdir(parents=True, exist_ok=True)
            if fresh:
                write_atomic(path, b"")
            elif path.exists():
                kept = [r for r in read_metrics(path) if not _after(r, resume_step)]
                with atomic_file(path) as f:
                    f.write("".join(_line(r) for r in kept).encode("utf-8"))

    def append(self, record: dict[str, Any]) -> None:
        if not self.enabled:
            return
        with _reported(self.path), append_file(self.path) as f:
            f.write(_line(record).encode("utf-8"))
        for mirror in self.mirrors:
            mirror.write(record)

    def close(self) -> None:
        """Finish the --log mirrors (the JSON-lines file needs nothing)."""
        mirrors, self.mirrors = self.mirrors, []
        for mirror in mirrors:
            mirror.close()


def _after(record: dict[str, Any], step: int) -> bool:
    value = record.get("step")
    return isinstance(value, int) and not isinstance(value, bool) and value > step


def _line(record: dict[str, Any]) -> str:
    return json.dumps(record, ensure_ascii=False) + "\n"


@contextmanager
def _reported(path: Path) -> Iterator[None]:
    """A failed write of the log or the plot (a full disk) is one line; checkpoints are untouched."""
    try:
        yield
    except OSError as exc:
        raise CheckpointError(f"could not write {path}: {describe_os_error(exc)}; the last saved "
                              "checkpoint is unchanged") from None


def read_metrics(path: Path) -> list[dict[str, Any]]:
    records = []
    if not path.exists():
        return records
    with open_regular(path) as f:  # a FIFO or device put in its place cannot block the read
        text = f.read().decode("utf-8", errors="replace")
    for line in text.splitlines():
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
    # the title holds the --out name: plain text, never matplotlib's `$...$` math
    ax.set_title(sanitize(f"{out.stem.removesuffix('.loss')}: loss against tokens seen"), parse_math=False)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    save_png(fig, out)


def save_png(fig: Any, out: Path) -> None:
    """Save a matplotlib figure as a PNG atomically (a reader never sees half a picture) and
    close it."""
    from matplotlib import pyplot as plt

    try:
        with _reported(out), atomic_file(out) as f:
            fig.savefig(f, format="png")
    finally:
        plt.close(fig)


def plot_gan_losses(records: list[dict[str, Any]], out: Path) -> None:
    """Written atomically as a PNG; does nothing before the first logged step."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    train = [r for r in records if r.get("event") == "train"]
    evals = [r for r in records if r.get("event") == "eval"]
    if not train and not evals:
        return
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2), dpi=110)
    adv = [r for r in train if r.get("phase") == "adversarial"]
    mle = [r for r in train if r.get("phase") == "mle"]
    if mle:
        left.plot([r["step"] for r in mle], [r["g_loss"] for r in mle], label="generator (MLE warm-up)")
    if adv:
        steps = [r["step"] for r in adv]
        left.plot(steps, [r["d_loss"] for r in adv], label="critic: D(fake) - D(real) + λ·GP")
        left.plot(steps, [r["g_loss"] for r in adv], label="generator: -D(fake)")
    left.set_xlabel("generator step")
    left.set_ylabel("loss")
    left.set_title("both players")
    left.grid(alpha=0.3)
    if left.lines:  # nothing logged yet before the first --log-interval
        left.legend(fontsize=8)
    if evals:
        steps = [r["step"] for r in evals]
        right.plot(steps, [r["val_nll"] for r in evals], marker="o", label="held-out NLL (nats/word)")
        right.plot(steps, [r["wasserstein"] for r in evals], marker="o", label="critic W estimate")
        right.legend(fontsize=8)
    right.set_xlabel("generator step")
    right.set_title("held-out")
    right.grid(alpha=0.3)
    fig.suptitle(sanitize(f"{out.stem.removesuffix('.loss')}: GAN training"), parse_math=False)  # plain text
    fig.tight_layout()
    save_png(fig, out)
