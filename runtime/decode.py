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
from runtime.window import keep_after_slide, prompt_window, roll_limit

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
    carry: Callable[[Any, int], Any] | None = None,
    rolls: bool = False,
) -> Iterator[int]:
    """Yield `max_new_tokens` new token ids continuing `prompt_ids` (non-empty).

    `carry(past, start)`, for models with a recurrent state (runtime/yoke_state.py), returns
    what a new window begins with, given the old window's `past` and the position in the old
    window where the new one starts; without it every window begins with `empty_past()`.
    With `rolls` (a rotary model without `carry`), a full window rolls instead of sliding
    (runtime/window.py): the past then offers `position` (of the next token) and `rolled(drop)`,
    as `RollingPast` and the runtime's `CacheBuffers` do."""
    if rolls and carry is not None:
        raise ValueError("a window that carries a state re-reads; it cannot roll")
    rng = np.random.default_rng(seed)
    context = list(prompt_ids)
    cached = prompt_window(len(context), block_size)
    first_past = empty_past()
    skipped = len(context) - cached
    if carry is not None and skipped:
        # The prompt before the first window is read in adjacent windows, as in training, so
        # that its state reaches the first window; the first of them takes the remainder.
        ends = range(skipped % block_size or block_size, skipped + 1, block_size)
        for begin, end in zip([0, *ends], ends, strict=False):
            _, chunk_past = forward(context[begin:end], first_past)
            first_past = carry(chunk_past, end - begin)
    logits, past = forward(context[-cached:], first_past)
    for produced in range(1, max_new_tokens + 1):
        token = sample_next(logits, settings, rng, context[-cached:])
        context.append(token)
        yield token
        if produced == max_new_tokens:
            return
        if cached + 1 > block_size and rolls and past.position < roll_limit(block_size):
            # The same window a slide would re-read: the cache keeps keep - 1 positions and
            # the new token is read after them.
            cached = keep_after_slide(block_size)
            logits, past = forward([token], past.rolled(block_size + 1 - cached))
        elif cached + 1 > block_size:
            keep = keep_after_slide(block_size)
            # The new window starts `cached + 1 - keep` positions into the old one.
            fresh = empty_past() if carry is None else carry(past, cached + 1 - keep)
            cached = keep
            logits, past = forward(context[-cached:], fresh)
        else:
            logits, past = forward([token], past)
            cached += 1
