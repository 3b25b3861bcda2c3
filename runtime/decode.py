"""The token loop shared by every sampler: prefill, cached steps, window slides, choices.

`forward(ids, past)` returns the logits of the last position (V,) and the new cache; the caller
supplies it (onnxruntime in the runtime, torch in `textgen_core.sampling`), so both sides read
exactly the same context at every step and choose with the same rule (`sample_next`, row by
row in `sample_rows`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from runtime.sampler import SamplingSettings, sample_rows
from runtime.window import WindowPlan

Forward = Callable[[Sequence[int], Any], tuple[np.ndarray, Any]]
# (one window per sequence, past) -> (last logits (b, V), new past)
BatchForward = Callable[[list[list[int]], Any], tuple[np.ndarray, Any]]


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
    """Yield `max_new_tokens` new token ids continuing `prompt_ids` (non-empty): `decode_batch`
    with one sequence, whose `forward(ids, past)` returns the last position's logits (V,)."""

    def forward_rows(windows: list[list[int]], past: Any) -> tuple[np.ndarray, Any]:
        logits, past = forward(windows[0], past)
        return np.asarray(logits)[None], past

    for tokens in decode_batch(prompt_ids, block_size=block_size, forward=forward_rows,
                               empty_past=empty_past, settings=[settings], seeds=[seed],
                               max_new_tokens=max_new_tokens, carry=carry, rolls=rolls):
        yield tokens[0]


def decode_batch(
    prompt_ids: Sequence[int],
    *,
    block_size: int,
    forward: BatchForward,
    empty_past: Callable[[], Any],
    settings: Sequence[SamplingSettings],
    seeds: Sequence[int | None],
    max_new_tokens: int,
    carry: Callable[[Any, int], Any] | None = None,
    rolls: bool = False,
) -> Iterator[list[int]]:
    """Yield, `max_new_tokens` times, one new token id per sequence: len(settings) sequences
    that all continue `prompt_ids` (non-empty), sequence i with `settings[i]` and its own random
    stream `default_rng(seeds[i])`.

    `forward(windows, past)` reads one window of ids per sequence (all of the same length) and
    returns the logits of each row's last position (b, V) and the new cache; `empty_past()` is a
    cache for all b rows. Every row has the same length at every step, so the rows slide or roll
    together and one model call serves them all; a row reads exactly what it would read alone.
    Calls of several tokens always start from an empty past (the prompt, a slide's re-read),
    and cached steps read one token per row, which every ONNX attention kernel takes at any
    batch (README, "ONNX interface").

    `carry(past, start)`, for models with a recurrent state (runtime/yoke_state.py), returns
    what a new window begins with, given the old window's `past` and the position in the old
    window where the new one starts; without it every window begins with `empty_past()`.
    With `rolls` (a rotary model without `carry`), a full window rolls instead of sliding
    (runtime/window.py): the past then offers `position` (of the next token) and `rolled(drop)`,
    as `RollingPast` and the runtime's `CacheBuffers` do."""
    if rolls and carry is not None:
        raise ValueError("a window that carries a state re-reads; it cannot roll")
    if len(seeds) != len(settings) or not settings:
        raise ValueError("one seed per sequence, at least one sequence")
    rngs = [np.random.default_rng(seed) for seed in seeds]
    # Only the last block_size ids of a row are ever read (a window, the repetition penalty's
    # look-back), so each row keeps those, not its own copy of the whole prompt: 256 rows of a
    # 4 MB prompt held 256 copies of its ids. The prompt before the first window is read once,
    # for every row alike, from `prompt_ids` itself.
    keep = max(block_size, 1)
    contexts = [list(prompt_ids[-keep:]) for _ in settings]
    length = len(prompt_ids)
    plan = WindowPlan(length, block_size, rolls)
    read = plan.first()
    first_past = empty_past()
    skipped = length - read.count
    if carry is not None and skipped:
        # The prompt before the first window is read in adjacent windows, as in training, so
        # that its state reaches the first window; the first of them takes the remainder.
        ends = range(skipped % block_size or block_size, skipped + 1, block_size)
        for begin, end in zip([0, *ends], ends, strict=False):
            chunk = list(prompt_ids[begin:end])
            _, chunk_past = forward([chunk for _ in contexts], first_past)
            first_past = carry(chunk_past, end - begin)
    logits, past = forward([c[-read.count:] for c in contexts], first_past)
    for produced in range(1, max_new_tokens + 1):
        window = plan.cached
        tokens = sample_rows(logits, settings, rngs,
                             [context[-window:] if row_settings.repetition_penalty != 1.0 else ()
                              for row_settings, context in zip(settings, contexts, strict=True)])
        for context, token in zip(contexts, tokens, strict=True):
            context.append(token)
            if len(context) > 2 * keep:  # amortised: the list is cut once every `keep` tokens
                del context[:-keep]
        yield tokens
        if produced == max_new_tokens:
            return
        read = plan.after_token()
        if read.drop:
            past = past.rolled(read.drop)
        elif read.fresh:
            past = empty_past() if carry is None else carry(past, read.start)
        logits, past = forward([c[-read.count:] for c in contexts], past)
