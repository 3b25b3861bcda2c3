"""The reverse score (textgen_core/metrics/reverse.py): a proper bigram model, and a collapsed
generator scores worse than a diverse one on the same held-out sentences."""

import math
import random

import pytest

from textgen_core.metrics.reverse import END, BigramModel, reverse_nll

WORDS = ["the", "king", "queen", "is", "was", "here", "gone", "my", "lord", "good", "night", "sir"]


def _sentences(count: int, seed: int) -> list[list[str]]:
    rng = random.Random(seed)
    return [[rng.choice(["the", "my"]), rng.choice(["king", "queen", "lord"]), rng.choice(["is", "was"]),
             rng.choice(["here", "gone", "good"])] for _ in range(count)]


def test_each_next_word_distribution_sums_to_one() -> None:
    model = BigramModel(_sentences(50, 0), vocab_size=len(WORDS))
    for prev in ["<s>", "the", "king", "sir", "never seen"]:
        assert sum(model.probability(prev, w) for w in [*WORDS, END]) == pytest.approx(1.0)


def test_a_collapsed_generator_scores_worse_than_a_diverse_one() -> None:
    held_out = _sentences(200, 1)
    diverse = reverse_nll(_sentences(200, 2), held_out, len(WORDS))
    collapsed = reverse_nll([["the", "king", "is", "here"]] * 200, held_out, len(WORDS))
    shuffled = reverse_nll([random.Random(3).sample(s, len(s)) for s in _sentences(200, 2)], held_out,
                           len(WORDS))
    assert diverse < shuffled < collapsed
    assert diverse < math.log(len(WORDS) + 1)  # better than knowing nothing
    assert math.isnan(reverse_nll([], held_out, len(WORDS)))
