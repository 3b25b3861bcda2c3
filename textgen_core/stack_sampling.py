"""Torch-side sampling from a layer stack through the runtime's decoding loop and sampler.

Two ways to read the context, chosen by the layers (the runtime does the same):
- a stack with position-dependent layers (PositionalEmbedding, attention, Block) re-reads the
  current window on every step, from zero recurrent state, exactly as it was trained;
- a purely recurrent stack feeds each new token once and carries the RNN/LSTM state, so its
  context is unbounded and a step costs the same at any length.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch

from runtime.decode import decode_batch
from runtime.generator import start_ids
from runtime.multi_sample import TokenBatches, sampled
from runtime.sampler import SamplingSettings
from runtime.stack_layout import decode_window
from runtime.tokenizer import CharTokenizer
from textgen_core.models.stack.model import Stack
from textgen_core.sampling import piece_decoder


def stack_token_batches(model: Stack, device: torch.device | str = "cpu") -> TokenBatches:
    """The stack's `token_batches(ids, settings, seeds, max_new_tokens)` (runtime/multi_sample.py):
    one token per sequence per step, one model call per step for all of them."""
    device = torch.device(device)
    windowed = model.config.windowed
    dtype = next(model.parameters()).dtype

    @torch.inference_mode()
    def forward(windows: list[list[int]], past: Any) -> tuple[np.ndarray, Any]:
        if windowed:  # past: the ids each row has already read in this window
            contexts = [[*p, *w] for p, w in zip(past or [[] for _ in windows], windows, strict=True)]
            logits, _, _ = model(torch.tensor(contexts, dtype=torch.long, device=device))
            return logits[:, -1].float().cpu().numpy(), contexts
        idx = torch.tensor(windows, dtype=torch.long, device=device)
        logits, _, state = model(idx, state=past)
        return logits[:, -1].float().cpu().numpy(), state

    def run(ids: list[int], settings: list[SamplingSettings], seeds: list[int | None],
            max_new_tokens: int) -> Iterator[list[int]]:
        batch = len(settings)
        block = decode_window(windowed, model.config.block_size, len(ids), max_new_tokens)
        return decode_batch(ids, block_size=block, forward=forward,
                            empty_past=(lambda: None) if windowed
                            else (lambda: model.empty_state(batch, device, dtype)),
                            settings=settings, seeds=seeds, max_new_tokens=max_new_tokens)

    return run


def generate_stack(
    model: Stack,
    tokenizer: CharTokenizer,
    prompt: str | list[str],
    *,
    max_new_tokens: int = 200,
    temperature: float | Sequence[float] = 0.8,
    top_k: int | None = None,
    top_p: float | None = None,
    repetition_penalty: float = 1.0,
    seed: int | None = None,
    device: torch.device | str = "cpu",
    num_samples: int = 1,
    stop: str | Sequence[str] = (),
) -> Iterator[str] | Iterator[tuple[int, str]]:
    """Yield the text of each new token; checks settings and prompt before the first one.
    As the runtime's `generate`: one str prompt gives its pieces, several sequences give
    `(index, piece)` pairs (runtime/multi_sample.py)."""
    return sampled(stack_token_batches(model, device), piece_decoder(tokenizer),
                   lambda text: start_ids(tokenizer, text), prompt,
                   max_new_tokens=max_new_tokens, temperature=temperature, top_k=top_k,
                   top_p=top_p, repetition_penalty=repetition_penalty, seed=seed,
                   num_samples=num_samples, stop=stop)
