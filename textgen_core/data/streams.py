"""Consecutive windows for truncated backpropagation through time (the stateful yoke).

`BatchSampler` draws every window at a fresh random offset, which is right for a model without
memory. A stateful model must see window k+1 of a stream right after window k, so it can learn
what to carry from one to the next. Here each of the `batch_size` rows is a stream that starts at
a random offset (each row its own, drawn from the run's generator) and yields `windows`
consecutive windows of `block_size` tokens; then all rows restart at new offsets and the caller
zeroes its state. The generator state plus (`drawn`, `starts`) is the whole data position.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from textgen_core.errors import CorpusError


class StreamSampler:
    def __init__(
        self,
        tokens: np.ndarray,
        block_size: int,
        batch_size: int,
        windows: int,
        generator: torch.Generator,
        device: torch.device,
        split: str = "train",
    ) -> None:
        span = windows * block_size
        if len(tokens) < span + 1:
            raise CorpusError(
                f"the {split} split has {len(tokens)} tokens, fewer than --yoke-windows x "
                f"--block-size + 1 ({span + 1}); use a larger corpus, fewer --yoke-windows or a "
                "smaller --block-size"
            )
        self.tokens = tokens
        self.block_size = block_size
        self.batch_size = batch_size
        self.windows = windows
        self.generator = generator
        self.device = device
        self.drawn = 0  # windows drawn so far; drawn % windows is the position within a stream
        self.starts = torch.zeros(batch_size, dtype=torch.long)
        self._window = np.arange(block_size + 1)

    def next(self) -> tuple[Tensor, Tensor, bool]:
        """(x, y) of the next window of every stream, and whether the streams just restarted
        (then the caller's carried state belongs to other text and must be reset)."""
        phase = self.drawn % self.windows
        if phase == 0:
            high = len(self.tokens) - self.windows * self.block_size
            self.starts = torch.randint(high, (self.batch_size,), generator=self.generator)
        self.drawn += 1
        offsets = self.starts.numpy()[:, None] + phase * self.block_size + self._window
        windows = torch.from_numpy(self.tokens[offsets].astype(np.int64))
        x, y = windows[:, :-1], windows[:, 1:]
        if self.device.type == "cuda":
            x = x.pin_memory().to(self.device, non_blocking=True)
            y = y.pin_memory().to(self.device, non_blocking=True)
        else:
            x, y = x.to(self.device), y.to(self.device)
        return x, y, phase == 0

    def state_dict(self) -> dict[str, Any]:
        return {"drawn": self.drawn, "starts": self.starts.clone()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        starts = state["starts"].cpu().long()
        if starts.shape != (self.batch_size,):
            raise CorpusError(f"the saved streams have {starts.numel()} rows but --batch-size is "
                              f"{self.batch_size}; resume with the saved --batch-size")
        self.drawn = int(state["drawn"])
        self.starts = starts
