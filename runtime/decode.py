"""The token loop shared by every sampler: prefill, cached steps, window slides, choices.

`forward(ids, past)` returns the logits of the last position (V,) and the new cache; the caller
supplies it (onnxruntime in the runtime, torch in `textgen_core.sampling`), so both sides read
exactly the same context at every step and choose with the same `sample_next`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from runtime.sampler import SamplingSettings, sample_next
from runtime.window import keep_after_slide, prompt_window

Forward = Callable[[Sequence[int], Any], tuple[np.ndarray, Any]]


def decode(
    prompt_ids: Sequence[int],
    *,
    block_size: int,
    forward: Forward,
    empty_past: Callable[[], Any],
    settings: SamplingSettings,
    max_new_tokens: int,
    seed: int | None,
) -> Iterator[int]:
    """Yield `max_new_tokens` new token ids continuing `prompt_ids` (non-empty)."""
    rng = np.random.default_rng(seed)
    context = list(prompt_ids)
    cached = prompt_window(len(context), block_size)
    logits, past = forward(context[-cached:], empty_past())
    for produced in range(1, max_new_tokens + 1):
        token = sample_next(logits, settings, rng, context[-cached:])
        context.append(token)
        yield token
        if produced == max_new_tokens:
            return
        if cached + 1 > block_size:
            cached = keep_after_slide(block_size)
            logits, past = forward(context[-cached:], empty_past())
        else:
            logits, past = forward([token], past)
            cached += 1
