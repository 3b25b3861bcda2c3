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

from runtime.decode import decode
from runtime.generator import start_ids
from runtime.sampler import SamplingSettings, validate_max_new_tokens
from runtime.stack_layout import decode_window
from runtime.tokenizer import CharTokenizer
from textgen_core.models.stack.model import Stack


def generate_stack(
    model: Stack,
    tokenizer: CharTokenizer,
    prompt: str,
    *,
    max_new_tokens: int = 200,
    temperature: float = 0.8,
    top_k: int | None = None,
    top_p: float | None = None,
    repetition_penalty: float = 1.0,
    seed: int | None = None,
    device: torch.device | str = "cpu",
) -> Iterator[str]:
    """Yield the text of each new token; checks settings and prompt before the first one."""
    settings = SamplingSettings(temperature, top_k, top_p, repetition_penalty)
    validate_max_new_tokens(max_new_tokens)
    ids = start_ids(tokenizer, prompt)
    device = torch.device(device)
    windowed = model.config.windowed
    dtype = next(model.parameters()).dtype

    @torch.inference_mode()
    def forward(window: Sequence[int], past: Any) -> tuple[np.ndarray, Any]:
        if windowed:  # past: the ids already read in this window
            context = [*past, *window]
            logits, _, _ = model(torch.tensor([context], dtype=torch.long, device=device))
            return logits[0, -1].float().cpu().numpy(), context
        idx = torch.tensor([list(window)], dtype=torch.long, device=device)
        logits, _, state = model(idx, state=past)
        return logits[0, -1].float().cpu().numpy(), state

    def empty() -> Any:
        return [] if windowed else model.empty_state(1, device, dtype)

    block = decode_window(windowed, model.config.block_size, len(ids), max_new_tokens)
    tokens = decode(ids, block_size=block, forward=forward, empty_past=empty, settings=settings,
                    max_new_tokens=max_new_tokens, seed=seed)
    return (tokenizer.decode([t]) for t in tokens)
