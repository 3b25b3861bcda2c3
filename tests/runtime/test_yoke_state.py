"""The decode loop carries a stateful model's state: the row just before each new window."""

import numpy as np

from runtime.decode import decode
from runtime.sampler import SamplingSettings
from runtime.window import keep_after_slide
from runtime.yoke_state import StatefulPast, carrier, row_at, stateful_forward

BLOCK = 8
GREEDY = SamplingSettings(temperature=0.0)


class Recorder:
    """A fake stateful model over absolute positions: a token's value is its position in the
    text, and the activation of a position is that position (so a state names where it came
    from). Records the state and first token of every window it is asked to start."""

    def __init__(self) -> None:
        self.windows: list[tuple[float, int]] = []

    def call(self, ids, cache, state):
        if not cache:
            self.windows.append((float(state[0, 0]), ids[0]))
        rows = np.asarray(ids, dtype=np.float32).reshape(1, -1, 1)
        logits = np.zeros(1000)
        logits[ids[-1] + 1] = 1.0  # the next token is the next position
        return logits, [*cache, *ids], rows


def run(prompt_len: int, new: int) -> tuple[Recorder, list[int]]:
    model = Recorder()
    tokens = decode(list(range(prompt_len)), block_size=BLOCK,
                    forward=stateful_forward(model.call),
                    empty_past=lambda: StatefulPast([], np.full((1, 1), -1.0)),
                    settings=GREEDY, max_new_tokens=new, seed=0, carry=carrier(list))
    return model, list(tokens)


def test_a_slide_carries_the_activation_just_before_the_new_window() -> None:
    model, tokens = run(prompt_len=3, new=20)
    assert tokens == list(range(3, 23))
    assert model.windows[0] == (-1.0, 0)  # the first window starts from the empty state
    for state, first in model.windows[1:]:
        assert state == first - 1  # the row of the position right before the window
    assert len(model.windows) > 2


def test_a_long_prompt_is_read_in_adjacent_windows_before_the_first() -> None:
    model, _ = run(prompt_len=27, new=1)
    first_window = 27 - keep_after_slide(BLOCK)
    # Adjacent chunks end exactly where the first window starts; the first chunk is short.
    starts = [first for _, first in model.windows]
    assert starts == [0, first_window - 2 * BLOCK, first_window - BLOCK, first_window]
    assert 0 < starts[1] < BLOCK
    assert [s for s, _ in model.windows] == [-1.0, starts[1] - 1, starts[2] - 1, starts[3] - 1]


def test_row_at_walks_the_calls_of_a_window() -> None:
    past = StatefulPast([], None, [np.arange(3.0).reshape(1, 3, 1), np.full((1, 1, 1), 7.0)])
    assert row_at(past, 2)[0, 0] == 2.0 and row_at(past, 3)[0, 0] == 7.0
