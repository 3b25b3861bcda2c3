"""How a sampler keeps going once the context window is full.

Either way the window keeps its most recent `keep_after_slide(block_size)` tokens (3/4 of it), so
the model always reads a long context, and the next block_size/4 tokens are cached steps:

- roll (rotary positions): attention depends only on the distance between tokens, so the cached
  keys/values stay valid. The sampler drops the oldest block_size/4 positions from the cache and
  goes on counting positions. No token is read twice; a window slide costs a slice of the cache.
- slide (learned absolute positions, and stateful yokes whose state belongs to a window): the
  cached keys/values embed their positions, so the sampler drops the cache and re-reads the kept
  tokens in one call. That is one prefill of 3/4 of the window per block_size/4 new tokens, instead
  of nanoGPT's full recomputation per token.

A rolled cache differs from a re-read one in one way: a kept token's keys/values were computed
when it saw tokens that have since left the window (as in sliding-window attention). On held-out
shakespeare this changed the loss by under +0.001 nats (benchmarks/window_quality.py). Positions index
the model's cos/sin tables (textgen_core/models/rotary.py), which end somewhere, so a roll gives
way to one slide (positions restart at 0) every `ROLL_LIMIT_WINDOWS` windows.

Every sampler (torch in `textgen_core.sampling`, numpy in `runtime.gpt`) takes these rules
from here, so they see the same context at every step and greedy decoding agrees token for token.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

ROLL_LIMIT_WINDOWS = 32


def keep_after_slide(block_size: int) -> int:
    """Number of most recent tokens re-read when the window slides (at least 1)."""
    return max(1, block_size - block_size // 4)


def prompt_window(num_prompt_tokens: int, block_size: int) -> int:
    """How many of the prompt's last tokens the first call reads: the whole prompt when it fits
    with room for one more token, else the same amount a slide keeps."""
    if num_prompt_tokens < block_size:
        return num_prompt_tokens
    return keep_after_slide(block_size)


def roll_limit(block_size: int) -> int:
    """Once a full window's next position reaches this, the sampler slides once (positions
    restart at 0) instead of rolling; positions therefore stay below roll_limit + block_size."""
    return ROLL_LIMIT_WINDOWS * block_size


@dataclass(frozen=True)
class Read:
    """What a sequence's model reads next: its context's last `count` tokens, either from an
    empty cache (`fresh`: the prompt, or a slide's re-read, which begins `start` positions into
    the old window) or after the cached ones, once the cache has dropped its `drop` oldest
    positions (a roll; 0 for a plain cached step)."""

    count: int
    fresh: bool
    drop: int = 0
    start: int = 0


class WindowPlan:
    """The reads of one sequence under the rules above: `first()` for its prompt, then
    `after_token()` once per new token. The batch decode loop (runtime/decode.py) follows one
    plan for rows of equal length, and the serving scheduler (runtime/scheduler.py) one plan
    per row, so a row reads exactly what it reads alone."""

    def __init__(self, prompt_length: int, block_size: int, rolls: bool) -> None:
        self.block_size, self.rolls = block_size, rolls
        self.cached = prompt_window(prompt_length, block_size)  # positions in the window
        self.position = self.cached  # of the next token, counted since the last fresh read

    def first(self) -> Read:
        return Read(self.cached, fresh=True)

    def after_token(self) -> Read:
        """The read of a new token appended to the context."""
        block_size = self.block_size
        if self.cached + 1 <= block_size:
            self.cached += 1
            self.position += 1
            return Read(1, fresh=False)
        keep = keep_after_slide(block_size)
        if self.rolls and self.position < roll_limit(block_size):
            # The same window a slide would re-read: the cache keeps keep - 1 positions and the
            # new token is read after them.
            self.cached = keep
            self.position += 1
            return Read(1, fresh=False, drop=block_size + 1 - keep)
        start = self.cached + 1 - keep  # where the new window starts in the old one
        self.cached = self.position = keep
        return Read(keep, fresh=True, start=start)


@dataclass(frozen=True)
class RollingPast:
    """A rotary model's cache as the decode loop carries it: the per-layer keys/values
    (b, h, p, d) (numpy or torch) and the position of the next token, which exceeds p once the
    cache has rolled. The runtime's in-place `CacheBuffers` (runtime/gpt.py) offers
    the same `position` and `rolled`."""

    cache: list[Any]  # per layer an array (b, h, p, d) or a (key, value) pair of them
    position: int = 0

    def rolled(self, drop: int) -> RollingPast:
        """The cache without its `drop` oldest positions; the next position is unchanged."""
        return RollingPast([_without_oldest(c, drop) for c in self.cache], self.position)


def _without_oldest(cached: Any, drop: int) -> Any:
    if isinstance(cached, tuple):
        return tuple(_without_oldest(part, drop) for part in cached)
    return cached[:, :, drop:]
