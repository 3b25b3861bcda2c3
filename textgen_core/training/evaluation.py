"""Loss estimates on fixed batches, so successive evaluations are comparable.

And the short text sample a GPT or stack run shows and logs at each evaluation: drawn in eval mode
from a fixed prompt (a newline when the vocabulary has one) and a fixed seed, so samples from one
evaluation to the next differ only by what the model learned.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import torch
from torch import nn

from runtime.tokenizer import Tokenizer
from textgen_core.data.batches import BatchSampler
from textgen_core.training.device import autocast

EVAL_SEED = 1234


@torch.no_grad()
def estimate_loss(
    model: nn.Module,
    tokens: np.ndarray,
    *,
    block_size: int,
    batch_size: int,
    iters: int,
    device: torch.device,
    split: str,
) -> float:
    """Mean loss over `iters` batches drawn with a fixed seed (the training RNG is untouched)."""
    was_training = model.training
    model.eval()
    generator = torch.Generator().manual_seed(EVAL_SEED)
    sampler = BatchSampler(tokens, block_size, batch_size, generator, device, split=split)
    total = 0.0
    for _ in range(iters):
        x, y = sampler.next()
        with autocast(device):
            _, loss, _ = model(x, y)
        total += float(loss)
    model.train(was_training)
    return total / iters


@torch.no_grad()
def corpus_loss(
    model: nn.Module, tokens: np.ndarray, *, block_size: int, batch_size: int, device: torch.device
) -> tuple[float, int]:
    """Mean next-token loss over `tokens`, read as consecutive non-overlapping windows of
    `block_size` predictions (each token sees only its window's prefix, as in training).
    Returns (mean loss, number of predicted tokens)."""
    model.eval()
    n_windows = (len(tokens) - 1) // block_size
    starts = np.arange(n_windows) * block_size
    offsets = np.arange(block_size + 1)
    total, count = 0.0, 0
    for i in range(0, n_windows, batch_size):
        windows = tokens[starts[i : i + batch_size, None] + offsets].astype(np.int64)
        batch = torch.from_numpy(windows).to(device)
        with autocast(device):
            _, loss, _ = model(batch[:, :-1], batch[:, 1:])
        n = batch[:, 1:].numel()
        total += float(loss) * n
        count += n
    return total / max(count, 1), count


SAMPLE_SEED = 0


def sample_text(model: torch.nn.Module, tokenizer: Tokenizer, max_new_tokens: int,
                pieces: Callable[[str], Iterable[str]]) -> str:
    """`pieces(prompt)` generates from the prompt; the model's train/eval mode is restored."""
    if max_new_tokens == 0:
        return ""
    prompt = ""  # the generators start an empty prompt at a line break (runtime.tokenizer.line_start_ids)
    was_training = model.training
    model.eval()
    try:
        return "".join(pieces(prompt))
    finally:
        model.train(was_training)
