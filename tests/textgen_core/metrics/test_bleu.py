"""BLEU and self-BLEU agree with nltk's sentence_bleu (method1 smoothing), and mean what they say."""

import random

import pytest
from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu

from textgen_core.metrics.bleu import bleu, self_bleu


def _sentences(seed: int, count: int) -> list[list[str]]:
    rng = random.Random(seed)
    words = ["a", "b", "c", "d", "e", "f", "g", "h"]
    return [[rng.choice(words) for _ in range(rng.randint(1, 9))] for _ in range(count)]


@pytest.mark.parametrize("n", [2, 3, 4])
def test_bleu_equals_nltk(n: int) -> None:
    refs, hyps = _sentences(0, 30), _sentences(1, 15)
    weights = tuple([1 / n] * n)
    smooth = SmoothingFunction().method1
    expected = sum(sentence_bleu(refs, h, weights, smoothing_function=smooth) for h in hyps) / len(hyps)
    assert bleu(hyps, refs, n) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("n", [2, 3, 4])
def test_self_bleu_equals_nltk_leave_one_out(n: int) -> None:
    sents = _sentences(2, 25)
    weights = tuple([1 / n] * n)
    smooth = SmoothingFunction().method1
    expected = sum(sentence_bleu(sents[:i] + sents[i + 1 :], s, weights, smoothing_function=smooth)
                   for i, s in enumerate(sents)) / len(sents)
    assert self_bleu(sents, n) == pytest.approx(expected, abs=1e-12)


def test_collapse_and_copies_score_one() -> None:
    same = [["the", "king", "is", "dead", "."]] * 10
    assert self_bleu(same, 4) == pytest.approx(1.0)
    assert bleu(same[:2], same, 4) == pytest.approx(1.0)
    assert bleu([["zz", "yy"]], same, 2) == 0.0  # no word in common
