"""The copy index finds exactly the planted corpus passages, nothing shorter than the minimum,
agrees with a brute-force search, and caches its suffix array on disk."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from runtime.errors import MarkupError
from runtime.markup.copy_index import CopyIndex, text_codes
from runtime.markup.suffix_array import suffix_array


def random_text(rng: random.Random, alphabet: str, n: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def test_suffix_array_matches_sorting_the_suffixes() -> None:
    rng = random.Random(0)
    for _ in range(200):
        s = random_text(rng, "ab\x00c\u00e9", rng.randint(1, 50))
        assert suffix_array(text_codes(s)).tolist() == sorted(range(len(s)), key=lambda i: s[i:])
    long_repeat = "abcab" * 300  # many rounds of doubling
    assert suffix_array(text_codes(long_repeat)).tolist() == sorted(range(1500), key=lambda i: long_repeat[i:])


def test_longest_matches_agree_with_brute_force() -> None:
    rng = random.Random(1)
    for _ in range(60):
        sources = [(f"s{k}", random_text(rng, "abc\n", rng.randint(0, 40))) for k in range(rng.randint(1, 3))]
        index = CopyIndex.from_texts(sources)
        query = random_text(rng, "abcd\x00", rng.randint(0, 30))
        lengths, where = index.longest_matches(query)
        corpus = "\x00".join(text for _, text in sources)
        for i in range(len(query)):
            best = max((n for n in range(len(query) - i + 1) if any(query[i:i + n] in t for _, t in sources)),
                       default=0)
            assert lengths[i] == best, (sources, query, i)
            if best:
                assert corpus[where[i]:where[i] + best] == query[i:i + best]


def test_planted_passages_are_found_exactly() -> None:
    rng = random.Random(2)
    a = random_text(rng, "abcdefgh \n", 20_000)
    b = random_text(rng, "abcdefgh \n", 20_000)
    index = CopyIndex.from_texts([("a.txt", a), ("b.txt", b)])
    filler = lambda n: random_text(rng, "XYZ", n)  # noqa: E731 - letters the corpus never uses
    planted = [("a.txt", 1_000, 12), ("b.txt", 5_000, 300), ("a.txt", 19_950, 50), ("b.txt", 0, 40)]
    parts, expected = [], []
    at = 0
    for label, offset, length in planted:
        gap = filler(rng.randint(5, 30))
        source = a if label == "a.txt" else b
        parts += [gap, source[offset:offset + length]]
        at += len(gap)
        expected.append((at, length, label))
        at += length
    parts += [filler(7), a[3_000:3_011], filler(9)]  # 11 characters: below the minimum of 12
    text = "".join(parts)
    markup = index.mark(text, min_run=12)
    assert [(r.start, r.length, r.source) for r in markup.runs] == expected
    for run in markup.runs:
        source = a if run.source == "a.txt" else b
        assert source[run.source_offset:run.source_offset + run.length] == text[run.start:run.start + run.length]
    assert markup.copied_chars == 12 + 300 + 50 + 40
    assert markup.longest is not None and markup.longest.length == 300 and markup.longest.source == "b.txt"
    assert index.mark(text, min_run=11).runs[-1].length == 11


def test_no_run_spans_two_sources() -> None:
    index = CopyIndex.from_texts([("one", "the end of the first book"), ("two", "start of the second")])
    markup = index.mark("first bookstart of the", min_run=5)
    assert [(r.length, r.source) for r in markup.runs] == [(10, "one"), (12, "two")]


def test_suffix_array_is_cached_and_rebuilt_when_the_corpus_changes(tmp_path: Path) -> None:
    corpus = tmp_path / "c.txt"
    corpus.write_text("It was the best of times, it was the worst of times.\n" * 20, encoding="utf-8")
    cache = tmp_path / "index"
    rounds: list[int] = []
    first = CopyIndex.for_files([corpus], ["c.txt"], cache=cache, on_round=rounds.append)
    (saved,) = cache.glob("*.sa.npy")
    built_rounds = len(rounds)
    again = CopyIndex.for_files([corpus], ["c.txt"], cache=cache, on_round=rounds.append)
    assert len(rounds) == built_rounds  # loaded, not rebuilt
    assert np.array_equal(np.asarray(again.sa), np.asarray(first.sa))
    corpus.write_text("A different text entirely.\n", encoding="utf-8")
    changed = CopyIndex.for_files([corpus], ["c.txt"], cache=cache)
    assert len(changed.sa) == len("A different text entirely.\n") and len(list(cache.glob("*.sa.npy"))) == 2
    assert saved.exists()


@pytest.mark.parametrize("bad", [0, -3, 2.5, True])
def test_min_run_must_be_positive(bad: object) -> None:
    with pytest.raises(MarkupError, match="--min-run must be a positive integer"):
        CopyIndex.from_texts([("a", "text")]).mark("text", min_run=bad)  # type: ignore[arg-type]
