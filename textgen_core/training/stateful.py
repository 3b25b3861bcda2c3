"""Training and evaluating a stateful-yoke GPT: the state carried across consecutive windows.

Truncated backpropagation through time: each window's loss is backpropagated through that window
only. The state handed to the next window is the bottleneck activation of the window's last
position, detached, so the graph (and the memory) of a window is freed once its step is done,
while the forward pass still carries information from window to window.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from textgen_core.data.streams import StreamSampler
from textgen_core.models.gpt import GPT
from textgen_core.training.device import BY_DEVICE, autocast

EVAL_SEED = 1234


class StatefulForward(nn.Module):
    """`forward(idx, state, targets) -> (logits, loss, hidden)`: the GPT's stateful call as a
    module's forward, so torch.compile and DistributedDataParallel can wrap it."""

    def __init__(self, model: GPT) -> None:
        super().__init__()
        self.model = model

    def forward(
        self, idx: Tensor, state: Tensor, targets: Tensor | None = None
    ) -> tuple[Tensor, Tensor | None, Tensor]:
        logits, loss, _, hidden = self.model.forward_stateful(idx, state, targets)
        assert hidden is not None, "a stateful yoke model always returns its bottleneck"
        return logits, loss, hidden


def next_state(hidden: Tensor) -> Tensor:
    """The state for the window that follows: the last position's bottleneck activation (B, H),
    cut from the graph (truncated BPTT) and kept in float32 whatever the autocast dtype."""
    return hidden[:, -1].detach().float().contiguous()  # a copy: not a view of the window


class StatefulBatches:
    """The training stream of a stateful run: consecutive windows and the state between them."""

    def __init__(self, sampler: StreamSampler, state_size: int, compute_dtype: Any = BY_DEVICE) -> None:
        self.sampler = sampler
        self.state_size = state_size
        self.compute_dtype = compute_dtype
        self.state = self._zeros()

    def _zeros(self) -> Tensor:
        return torch.zeros(self.sampler.batch_size, self.state_size, device=self.sampler.device)

    def loss(self, forward: nn.Module, device: torch.device) -> Tensor:
        """Loss of the next window (with the autograd graph of this window only)."""
        x, y, restarted = self.sampler.next()
        if restarted:
            self.state = self._zeros()
        with autocast(device, training=True, dtype=self.compute_dtype):
            _, loss, hidden = forward(x, self.state, y)
        self.state = next_state(hidden)
        return loss

    def state_dict(self) -> dict[str, Any]:
        return {**self.sampler.state_dict(), "state": self.state.cpu().contiguous()}

    def load_state_dict(self, saved: dict[str, Any]) -> None:
        self.sampler.load_state_dict(saved)
        self.state = saved["state"].to(self.sampler.device).float()


@torch.no_grad()
def estimate_stream_loss(
    forward: nn.Module,
    tokens: np.ndarray,
    *,
    block_size: int,
    batch_size: int,
    windows: int,
    state_size: int,
    iters: int,
    device: torch.device,
    split: str,
) -> float:
    """Mean loss over `iters` windows of fixed-seed streams, the state carried as in training
    (so the number reflects what the state is worth; the first window of a stream has none)."""
    was_training = forward.training
    forward.eval()
    sampler = StreamSampler(tokens, block_size, batch_size, windows,
                            torch.Generator().manual_seed(EVAL_SEED), device, split=split)
    batches = StatefulBatches(sampler, state_size)
    total = sum(float(batches.loss(forward, device)) for _ in range(iters))
    forward.train(was_training)
    return total / iters


@torch.no_grad()
def stream_corpus_loss(
    model: GPT, tokens: np.ndarray, *, block_size: int, batch_size: int, device: torch.device
) -> tuple[float, int]:
    """Like `corpus_loss` (the same consecutive non-overlapping windows, the same tokens), but
    the state runs through them in text order. Rows of a batch are `batch_size` contiguous
    stretches of the text; the windows left over after an even split follow the last stretch,
    so that row carries on through them alone."""
    model.eval()
    forward = StatefulForward(model)
    n_windows = (len(tokens) - 1) // block_size
    rows = max(1, min(batch_size, n_windows))
    per_row = n_windows // rows
    offsets = np.arange(block_size + 1)
    state = torch.zeros(rows, model.config.yoke_state_size, device=device)
    total, count = 0.0, 0

    def run(window_ids: np.ndarray, state: Tensor) -> Tensor:
        nonlocal total, count
        batch = torch.from_numpy(tokens[window_ids[:, None] * block_size + offsets].astype(np.int64))
        batch = batch.to(device)
        with autocast(device):
            _, loss, hidden = forward(batch[:, :-1], state, batch[:, 1:])
        n = batch[:, 1:].numel()
        total += float(loss) * n
        count += n
        return next_state(hidden)

    for j in range(per_row):
        state = run(np.arange(rows) * per_row + j, state)
    last = state[-1:]
    for window in range(rows * per_row, n_windows):
        last = run(np.array([window]), last)
    return total / max(count, 1), count
