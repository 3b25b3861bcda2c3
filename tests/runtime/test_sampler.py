import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from runtime.errors import SamplingError
from runtime.sampler import SamplingSettings, sample_next, sample_rows, validate_max_new_tokens

LOGITS = np.array([1.0, 3.0, 2.0, 3.0, -1.0])


def draw(logits: np.ndarray, seed: int = 0, previous: tuple[int, ...] = (), **kw: object) -> int:
    return sample_next(logits, SamplingSettings(**kw), np.random.default_rng(seed), previous)


def test_greedy_is_argmax_with_ties_to_lowest_id() -> None:
    assert draw(LOGITS, temperature=0) == 1


def test_same_seed_same_choices() -> None:
    a = [draw(LOGITS, seed=s, temperature=1.0) for s in range(20)]
    b = [draw(LOGITS, seed=s, temperature=1.0) for s in range(20)]
    assert a == b and len(set(a)) > 1


def test_top_k_1_and_tiny_top_p_are_greedy() -> None:
    for seed in range(10):
        assert draw(LOGITS, seed=seed, temperature=1.0, top_k=1) in (1, 3)
        assert draw(np.array([0.0, 5.0, 1.0]), seed=seed, temperature=1.0, top_p=1e-6) == 1


def test_top_k_keeps_only_the_k_likeliest() -> None:
    chosen = {draw(LOGITS, seed=s, temperature=5.0, top_k=3) for s in range(200)}
    assert chosen <= {1, 2, 3}


def test_repetition_penalty_lowers_repeated_tokens() -> None:
    logits = np.array([2.0, 2.0])
    plain = sum(draw(logits, seed=s, temperature=1.0) == 0 for s in range(400))
    penalised = sum(draw(logits, seed=s, previous=(0,), temperature=1.0, repetition_penalty=3.0) == 0
                    for s in range(400))
    assert penalised < plain / 2


def test_greedy_follows_the_same_rules_for_nan_and_inf() -> None:
    """Greedy without a penalty takes a shorter path (no float64 copy); the edge rules hold."""
    assert draw(np.array([np.nan, 1.0, 3.0, 3.0], np.float32), temperature=0) == 2
    assert draw(np.array([2.0, np.inf, np.nan, np.inf], np.float32), temperature=0) == 1
    assert draw(np.array([np.nan, np.nan], np.float32), temperature=0) == 0
    assert draw(np.array([-np.inf, -np.inf, -np.inf], np.float32), temperature=0) == 0
    assert draw(np.array([-np.inf, 5.0, np.nan], np.float32), temperature=0) == 1
    # with a penalty the full path runs: token 1 is penalised below token 0
    assert draw(np.array([1.0, 1.5]), temperature=0, previous=(1,), repetition_penalty=2.0) == 0


def test_nan_and_inf_logits_have_defined_results() -> None:
    assert draw(np.array([np.nan, 1.0, np.nan]), temperature=1.0) == 1
    assert draw(np.array([0.0, np.inf, 5.0]), temperature=0.7) == 1
    assert draw(np.array([np.nan, -np.inf]), temperature=1.0) == 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"temperature": -1.0}, "--temperature must be a finite number >= 0"),
        ({"temperature": math.nan}, "--temperature"),
        ({"top_k": -2}, "--top-k must be >= 0"),
        ({"top_p": 0.0}, r"--top-p must be in \(0, 1\]"),
        ({"top_p": 1.5}, "--top-p"),
        ({"repetition_penalty": 0.0}, "--repetition-penalty"),
    ],
)
def test_invalid_settings(kwargs: dict, message: str) -> None:
    with pytest.raises(SamplingError, match=message):
        SamplingSettings(**kwargs)


@pytest.mark.parametrize("value", [0, -3])
def test_max_new_tokens_must_be_positive(value: int) -> None:
    with pytest.raises(SamplingError, match="--max-new-tokens must be a positive integer"):
        validate_max_new_tokens(value)


finite_or_not = st.floats(allow_nan=True, allow_infinity=True, width=32)


@settings(max_examples=300, deadline=None)
@given(
    logits=arrays(np.float32, st.integers(1, 40), elements=finite_or_not),
    temperature=st.floats(0.0, 5.0),
    top_k=st.integers(0, 80),
    top_p=st.floats(1e-6, 1.0),
    penalty=st.floats(0.5, 3.0),
    seed=st.integers(0, 2**32 - 1),
)
def test_any_logits_and_settings_give_a_valid_id(
    logits: np.ndarray, temperature: float, top_k: int, top_p: float, penalty: float, seed: int
) -> None:
    settings_ = SamplingSettings(temperature, top_k, top_p, penalty)
    token = sample_next(logits, settings_, np.random.default_rng(seed), range(len(logits)))
    assert 0 <= token < len(logits)


@pytest.mark.parametrize("vocab", [1, 3, 85, 2048, 50257])
def test_sample_rows_chooses_what_sample_next_chooses_row_by_row(vocab: int) -> None:
    """The batched choice (a decode step's rows, the server's running batch) is the per-row rule
    bit for bit: the same token from the same draw, whatever the batch beside the row."""
    maker = np.random.default_rng(vocab)
    checked = 0
    for trial in range(12):
        rows = int(maker.integers(1, 12))
        logits = (maker.standard_normal((rows, vocab)) * maker.choice([0.1, 1.0, 8.0, 40.0])
                  ).astype(np.float32)
        if trial % 3 == 0:  # rows the batch hands to sample_next: NaN, +inf, all -inf
            logits[0, 0] = np.nan
            logits[-1, :] = -np.inf
            if rows > 2:
                logits[1, -1] = np.inf
        settings = [SamplingSettings(
            temperature=float(maker.choice([0.0, 0.3, 0.8, 1.0, 1.7])),
            top_k=int(maker.choice([0, 1, 5, 40])) or None,
            top_p=float(maker.choice([1.0, 1.0, 0.9])),
            repetition_penalty=float(maker.choice([1.0, 1.0, 1.3]))) for _ in range(rows)]
        previous = [maker.integers(0, vocab, 6).tolist() for _ in range(rows)]
        seeds = maker.integers(0, 2**32, rows).tolist()
        for repeat in range(4):
            batched = sample_rows(logits, settings,
                                  [np.random.default_rng(s + repeat) for s in seeds], previous)
            alone = [sample_next(logits[i], settings[i], np.random.default_rng(seeds[i] + repeat),
                                 previous[i]) for i in range(rows)]
            assert batched == alone
            checked += rows
    assert checked > 100


def test_sample_rows_draws_once_per_row_from_its_own_generator() -> None:
    logits = np.tile(np.linspace(0, 1, 50, dtype=np.float32), (3, 1))
    rngs = [np.random.default_rng(7) for _ in range(3)]
    first = sample_rows(logits, [SamplingSettings(1.0)] * 3, rngs)
    assert len(set(first)) == 1  # equal rows, equal streams: equal tokens
    assert [rng.random() for rng in rngs] == [_second_draw(7)] * 3
    with pytest.raises(ValueError, match="one row"):
        sample_rows(logits, [SamplingSettings(1.0)] * 2, rngs[:2])


def _second_draw(seed: int) -> float:
    rng = np.random.default_rng(seed)
    rng.random()
    return rng.random()
