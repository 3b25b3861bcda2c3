"""The GAN run's loss-curve picture beside the checkpoint: both players' losses, and the
held-out NLL with the critic's Wasserstein estimate, against generator steps."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textgen_core.training.metrics_log import save_png


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
    fig.suptitle(f"{out.stem.removesuffix('.loss')}: GAN training")
    fig.tight_layout()
    save_png(fig, out)
