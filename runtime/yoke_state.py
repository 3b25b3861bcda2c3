"""Keeping a stateful yoke's state across context windows while sampling (torch and runtime).

A window is read with one state: the bottleneck activation of the position just before the
window's first token (see textgen_core/models/yoke.py). The model returns that activation for
every position it reads, so the sampler keeps the rows of the current window; when the window
slides, the row just before the new window's first token becomes the new window's state. The
state thus chains from window to window as it did in training, where it was the last position
of the previous, adjacent window.

`StatefulPast` is the decode loop's opaque `past` for such models; `stateful_forward` adapts a
model call `(ids, cache, state) -> (last logits, cache, rows)` to the loop's `forward`, and
`carry` is the loop's `carry`. The arrays may be numpy or torch: only indexing is used.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

StatefulCall = Callable[[Sequence[int], Any, Any], tuple[np.ndarray, Any, Any]]


@dataclass
class StatefulPast:
    cache: Any  # the model's own past (key/value cache, or the ids read so far)
    state: Any  # (1, H): the state this window is read with
    rows: list[Any] = field(default_factory=list)  # per call, (1, s, H) activations, in order


def stateful_forward(call: StatefulCall) -> Callable[[Sequence[int], StatefulPast],
                                                     tuple[np.ndarray, StatefulPast]]:
    def forward(ids: Sequence[int], past: StatefulPast) -> tuple[np.ndarray, StatefulPast]:
        logits, cache, rows = call(ids, past.cache, past.state)
        return logits, StatefulPast(cache, past.state, [*past.rows, rows])

    return forward


def row_at(past: StatefulPast, index: int) -> Any:
    """The activation (1, H) of window position `index`."""
    for rows in past.rows:
        if index < rows.shape[1]:
            return rows[:, index]
        index -= rows.shape[1]
    raise IndexError("window position beyond what the window has read")


def carrier(empty_cache: Callable[[], Any]) -> Callable[[StatefulPast, int], StatefulPast]:
    """The decode loop's `carry(past, start)`: a fresh window that starts at position `start`
    (>= 1) of the window in `past`, read with the activation of position start - 1."""

    def carry(past: StatefulPast, start: int) -> StatefulPast:
        return StatefulPast(empty_cache(), row_at(past, start - 1))

    return carry
