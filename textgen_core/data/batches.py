"""Random (input, target) windows from a memory-mapped token array."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from textgen_core.errors import CorpusError
from textgen_core.training.device import pins_memory


class BatchSampler:
    """Draws `batch_size` windows of `block_size` tokens at offsets from `generator`, whose state
    is the whole data position of a run (saved in checkpoints, restored on resume)."""

    def __init__(
        self,
        tokens: np.ndarray,
        block_size: int,
        batch_size: int,
        generator: torch.Generator,
        device: torch.device,
        split: str = "train",
    ) -> None:
        if len(tokens) < block_size + 1:
            raise CorpusError(
                f"the {split} split has {len(tokens)} tokens, fewer than --block-size + 1 "
                f"({block_size + 1}); use a larger corpus or a smaller --block-size"
            )
        self.tokens = tokens
        self.block_size = block_size
        self.batch_size = batch_size
        self.generator = generator
        self.device = device
        self._window = np.arange(block_size + 1)

    def next(self) -> tuple[Tensor, Tensor]:
        high = len(self.tokens) - self.block_size
        starts = torch.randint(high, (self.batch_size,), generator=self.generator).numpy()
        windows = torch.from_numpy(self.tokens[starts[:, None] + self._window].astype(np.int64))
        x, y = windows[:, :-1], windows[:, 1:]
        if pins_memory(self.device.type):
            return (
                x.pin_memory().to(self.device, non_blocking=True),
                y.pin_memory().to(self.device, non_blocking=True),
            )
        return x.to(self.device), y.to(self.device)
