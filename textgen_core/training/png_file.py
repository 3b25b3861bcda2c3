"""Write a matplotlib figure as a PNG atomically: to a temporary file beside the target, then
renamed over it, so a reader never sees half a picture."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from runtime.atomic_file import atomic_file


def save_png(fig: Any, out: Path) -> None:
    """Save `fig` to `out` and close it."""
    from matplotlib import pyplot as plt

    try:
        with atomic_file(out) as f:
            fig.savefig(f, format="png")
    finally:
        plt.close(fig)
