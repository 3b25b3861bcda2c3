"""The reverse score: a small language model trained on a source's sentences, scored on the
held-out real sentences, in nats per word (the sentence end counted as a word).

BLEU rewards a generator for writing sentences that look real and self-BLEU for writing them
differently; neither sees what the generator never writes. A language model trained only on its
sentences does: held-out sentences full of words and word pairs the generator never produced
cost it many nats, so a collapsed generator (a few sentences, over and over) scores badly
however real those few look ("reverse perplexity", Zhao et al. 2018; Caccia et al. 2020 train
an LSTM, here the model is an interpolated bigram that trains in milliseconds, so every row of
a temperature sweep gets one).

The model: Witten-Bell interpolation of word bigrams with add-one unigrams over the shared
vocabulary (`vocab_size` words plus the end), so no held-out word has probability zero and no
setting is tuned. Lower is better; the held-out real sentences' own row (a model trained on
real sentences the references do not contain) is the mark to reach.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Sequence

START, END = "<s>", "</s>"


class BigramModel:
    """Word bigrams with Witten-Bell interpolation down to add-one unigrams."""

    def __init__(self, sentences: Sequence[Sequence[str]], vocab_size: int) -> None:
        self.unigrams: Counter[str] = Counter()
        self.bigrams: dict[str, Counter[str]] = defaultdict(Counter)
        for sentence in sentences:
            words = [*sentence, END]
            self.unigrams.update(words)
            for prev, word in zip([START, *sentence], words, strict=True):
                self.bigrams[prev][word] += 1
        self.total = sum(self.unigrams.values())
        self.outcomes = vocab_size + 1  # every word of the vocabulary, and the end
        # per previous word: how often it was followed, and by how many different words
        self.followed = {prev: (sum(f.values()), len(f)) for prev, f in self.bigrams.items()}

    def unigram(self, word: str) -> float:
        return (self.unigrams[word] + 1) / (self.total + self.outcomes)

    def probability(self, prev: str, word: str) -> float:
        seen, kinds = self.followed.get(prev, (0, 0))
        if not seen:
            return self.unigram(word)
        weight = seen / (seen + kinds)
        return weight * self.bigrams[prev][word] / seen + (1 - weight) * self.unigram(word)

    def nll(self, sentences: Sequence[Sequence[str]]) -> float:
        """Mean nats per word (the end included) of `sentences` under the model."""
        nats, words = 0.0, 0
        for sentence in sentences:
            for prev, word in zip([START, *sentence], [*sentence, END], strict=True):
                nats -= math.log(self.probability(prev, word))
                words += 1
        return nats / max(words, 1)


def reverse_nll(generated: Sequence[Sequence[str]], held_out: Sequence[Sequence[str]],
                vocab_size: int) -> float:
    """Nats per word of the held-out sentences under a bigram model of the generated ones."""
    if not generated or not held_out:
        return math.nan
    return BigramModel(generated, vocab_size).nll(held_out)
