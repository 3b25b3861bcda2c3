"""Torch-side sampling with the KV cache, through the runtime's decoding loop and sampler, so the
same seed and settings give the same text here and in the exported runtime."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch

from runtime.decode import decode
from runtime.generator import start_ids
from runtime.sampler import SamplingSettings, validate_max_new_tokens
from runtime.tokenizer import CharTokenizer
from runtime.window import RollingPast
from runtime.yoke_state import StatefulPast, carrier, stateful_forward
from textgen_core.models.gpt import GPT, KeyValue


def generate(
    model: GPT,
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

    @torch.inference_mode()
    def forward(window: Sequence[int], past: list[KeyValue]) -> tuple[np.ndarray, list[KeyValue]]:
        idx = torch.tensor([list(window)], dtype=torch.long, device=device)
        logits, _, present = model(idx, past_key_values=past)
        return logits[0, -1].float().cpu().numpy(), present

    @torch.inference_mode()
    def forward_rolling(window: Sequence[int], past: RollingPast) -> tuple[np.ndarray, RollingPast]:
        idx = torch.tensor([list(window)], dtype=torch.long, device=device)
        positions = torch.arange(len(window), device=device) + past.position
        logits, _, present = model(idx, past_key_values=past.cache, positions=positions)
        return logits[0, -1].float().cpu().numpy(), RollingPast(present, past.position + len(window))

    def empty() -> list[KeyValue]:
        return model.empty_cache(1, device)

    state_size = model.config.yoke_state_size
    if not state_size:
        rolling = model.config.rotary  # the cache rolls when the window is full (runtime/window.py)
        tokens = decode(ids, block_size=model.config.block_size,
                        forward=forward_rolling if rolling else forward,
                        empty_past=(lambda: RollingPast(empty())) if rolling else empty,
                        settings=settings, max_new_tokens=max_new_tokens, seed=seed, rolls=rolling)
        return (tokenizer.decode([t]) for t in tokens)

    @torch.inference_mode()
    def call(window: Sequence[int], past: list[KeyValue], state: torch.Tensor
             ) -> tuple[np.ndarray, list[KeyValue], torch.Tensor]:
        idx = torch.tensor([list(window)], dtype=torch.long, device=device)
        logits, _, present, hidden = model.forward_stateful(idx, state, past_key_values=past)
        return logits[0, -1].float().cpu().numpy(), present, hidden

    def empty_stateful() -> StatefulPast:
        return StatefulPast(empty(), torch.zeros(1, state_size, device=device))

    tokens = decode(ids, block_size=model.config.block_size, forward=stateful_forward(call),
                    empty_past=empty_stateful, settings=settings, max_new_tokens=max_new_tokens,
                    seed=seed, carry=carrier(empty))
    return (tokenizer.decode([t]) for t in tokens)
