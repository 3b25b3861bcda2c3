"""Write a matplotlib figure as a PNG atomically: to a temporary file beside the target, then
renamed over it, so a reader never sees half a picture."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any


def save_png(fig: Any, out: Path) -> None:
    """Save `fig` to `out` and close it."""
    from matplotlib import pyplot as plt

    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".png", dir=out.parent)
    os.close(fd)
    try:
        fig.savefig(tmp, format="png")
        os.replace(tmp, out)
    finally:
        plt.close(fig)
        Path(tmp).unlink(missing_ok=True)
