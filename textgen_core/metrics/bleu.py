"""BLEU of generated sentences against a reference set, and self-BLEU among them.

Each hypothesis is scored with sentence BLEU against *all* references at once (the text-GAN
convention of Texygen, Zhu et al. 2018), then the scores are averaged. BLEU-n is the geometric
mean of the modified 1..n-gram precisions times the brevity penalty (closest reference length).
A precision with no match counts as ε / (number of hypothesis n-grams), ε = 0.1, as nltk's
`SmoothingFunction().method1`; a hypothesis without any matching word scores 0. The results equal
nltk's `sentence_bleu` (tested) but run in time linear in the hypothesis: the clipping counts
(the largest count of each n-gram in any one reference) are computed once per reference set.

Self-BLEU scores every sentence against all the *other* sentences of the same set: high self-BLEU
means the sentences repeat each other (mode collapse).
"""

from __future__ import annotations

import bisect
import math
from collections import Counter
from collections.abc import Sequence

EPSILON = 0.1
Sentence = Sequence[str]


def ngrams(words: Sentence, n: int) -> Counter[tuple[str, ...]]:
    return Counter(tuple(words[i : i + n]) for i in range(len(words) - n + 1))


def _closest_length(lengths: list[int], hyp_len: int) -> int:
    """The reference length closest to `hyp_len` (ties: the shorter); `lengths` sorted."""
    at = bisect.bisect_left(lengths, hyp_len)
    candidates = lengths[max(0, at - 1) : at + 1]
    return min(candidates, key=lambda r: (abs(r - hyp_len), r))


def _score(hyp: Sentence, max_n: int, clip: list[dict], ref_len: int) -> float:
    log_sum = 0.0
    for n in range(1, max_n + 1):
        counts = ngrams(hyp, n)
        total = sum(counts.values())
        matches = sum(min(c, clip[n - 1].get(g, 0)) for g, c in counts.items())
        if n == 1 and matches == 0:
            return 0.0
        p = matches / total if matches else EPSILON / max(1, total)
        log_sum += math.log(p)
    hyp_len = len(hyp)
    brevity = 1.0 if hyp_len > ref_len else math.exp(1 - ref_len / hyp_len)
    return brevity * math.exp(log_sum / max_n)


class References:
    """A reference set prepared once: per order, each n-gram's largest count in one reference."""

    def __init__(self, references: Sequence[Sentence], max_n: int = 4) -> None:
        if not references:
            raise ValueError("BLEU needs at least one reference sentence")
        self.max_n = max_n
        self.clip: list[dict[tuple[str, ...], int]] = [{} for _ in range(max_n)]
        for ref in references:
            for n in range(1, max_n + 1):
                table = self.clip[n - 1]
                for gram, count in ngrams(ref, n).items():
                    if count > table.get(gram, 0):
                        table[gram] = count
        self.lengths = sorted(len(r) for r in references)

    def sentence_bleu(self, hyp: Sentence, n: int) -> float:
        if not hyp:
            return 0.0
        return _score(hyp, n, self.clip, _closest_length(self.lengths, len(hyp)))


def bleu(hypotheses: Sequence[Sentence], references: References | Sequence[Sentence], n: int) -> float:
    """Mean sentence BLEU-n of `hypotheses` against the whole reference set."""
    if not isinstance(references, References):
        references = References(references, n)
    if not hypotheses:
        return math.nan
    return sum(references.sentence_bleu(h, n) for h in hypotheses) / len(hypotheses)


def self_bleu(sentences: Sequence[Sentence], n: int) -> float:
    """Mean BLEU-n of each sentence against all the others (leave-one-out)."""
    if len(sentences) < 2:
        return math.nan
    # Per n-gram: the largest count, which sentence holds it, and the second largest; leaving
    # sentence i out then changes the clip of an n-gram only where i holds its largest count.
    best: list[dict[tuple[str, ...], tuple[int, int, int]]] = [{} for _ in range(n)]
    for i, sentence in enumerate(sentences):
        for k in range(1, n + 1):
            table = best[k - 1]
            for gram, count in ngrams(sentence, k).items():
                top, holder, second = table.get(gram, (0, -1, 0))
                if count > top:
                    table[gram] = (count, i, top)
                elif count > second:
                    table[gram] = (top, holder, count)
    lengths = sorted(len(s) for s in sentences)
    total = 0.0
    for i, sentence in enumerate(sentences):
        if not sentence:
            continue
        clip = [_LeaveOneOut(table, i) for table in best]
        others = lengths.copy()
        others.pop(bisect.bisect_left(others, len(sentence)))
        total += _score(sentence, n, clip, _closest_length(others, len(sentence)))  # type: ignore[arg-type]
    return total / len(sentences)


class _LeaveOneOut:
    """Read-only view of the clip counts with one sentence left out."""

    def __init__(self, table: dict[tuple[str, ...], tuple[int, int, int]], left_out: int) -> None:
        self.table, self.left_out = table, left_out

    def get(self, gram: tuple[str, ...], default: int = 0) -> int:
        entry = self.table.get(gram)
        if entry is None:
            return default
        top, holder, second = entry
        return second if holder == self.left_out else top
