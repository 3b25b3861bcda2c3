"""The decode loop's window policies, watched through a recording fake model."""

import numpy as np

from runtime.decode import decode
from runtime.sampler import SamplingSettings
from runtime.window import RollingPast, keep_after_slide, roll_limit

BLOCK = 8
GREEDY = SamplingSettings(temperature=0.0, top_k=None, top_p=None, repetition_penalty=1.0)


class FakeModel:
    """Predicts (last id + 1) mod 50 and records every call: ids read, cache length, position."""

    def __init__(self) -> None:
        self.calls: list[tuple[list[int], int, int]] = []

    def _logits(self, ids) -> np.ndarray:
        logits = np.zeros(50, np.float32)
        logits[(ids[-1] + 1) % 50] = 1.0
        return logits

    def forward_rolling(self, ids, past: RollingPast):
        cache = past.cache[0]
        self.calls.append((list(ids), cache.shape[2], past.position))
        grown = np.concatenate([cache, np.zeros((1, 1, len(ids), 1), np.float32)], axis=2)
        assert grown.shape[2] <= BLOCK
        return self._logits(ids), RollingPast([grown], past.position + len(ids))

    def forward_plain(self, ids, past: list):
        self.calls.append((list(ids), len(past), len(past)))
        assert len(past) + len(ids) <= BLOCK
        return self._logits(ids), [*past, *ids]


def _run(model: FakeModel, rolling: bool, new_tokens: int, prompt=(1, 2, 3)) -> list[int]:
    if rolling:
        forward, empty = model.forward_rolling, lambda: RollingPast([np.zeros((1, 1, 0, 1))])
    else:
        forward, empty = model.forward_plain, list
    return list(decode(list(prompt), block_size=BLOCK, forward=forward, empty_past=empty,
                       settings=GREEDY, max_new_tokens=new_tokens, seed=0, rolls=rolling))


def test_a_rolling_cache_never_reads_a_token_twice() -> None:
    model = FakeModel()
    tokens = _run(model, rolling=True, new_tokens=40)
    assert tokens == [(4 + i) % 50 for i in range(40)]
    assert [len(ids) for ids, _, _ in model.calls] == [3] + [1] * 39
    # Positions count on past the window while the cache stays within it (FakeModel checks).
    assert [position for _, _, position in model.calls] == [0, *range(3, 42)]
    cache_lengths = [length for _, length, _ in model.calls]
    assert max(cache_lengths) == BLOCK - 1
    assert min(cache_lengths[BLOCK:]) == keep_after_slide(BLOCK) - 1  # right after each roll


def test_rolling_and_sliding_read_the_same_windows() -> None:
    rolled, slid = FakeModel(), FakeModel()
    assert _run(rolled, True, 30) == _run(slid, False, 30)
    # Where the slide re-reads `keep` tokens the roll reads one after a cache of keep - 1.
    for (ids_r, cache_r, _), (ids_s, cache_s, _) in zip(rolled.calls, slid.calls, strict=True):
        assert cache_r + len(ids_r) == cache_s + len(ids_s)
        assert ids_r == ids_s[-len(ids_r):]


def test_positions_restart_with_one_slide_at_the_roll_limit() -> None:
    model = FakeModel()
    _run(model, rolling=True, new_tokens=roll_limit(BLOCK) + 3 * BLOCK)
    restarts = [i for i, (_, length, position) in enumerate(model.calls) if i and position == 0]
    assert len(restarts) == 1
    ids, length, _ = model.calls[restarts[0]]
    assert length == 0 and len(ids) == keep_after_slide(BLOCK)
    # The limit is checked when the window is full, so positions pass it by less than a window.
    assert roll_limit(BLOCK) <= max(position for _, _, position in model.calls) < roll_limit(BLOCK) + BLOCK
