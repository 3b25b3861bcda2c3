"""Verbatim-copy markup against the 5 MB Shakespeare corpus:

- building the suffix-array index (once per corpus; cached afterwards), and loading it back;
- marking 10,000 characters of model-like text (spliced corpus fragments of 5-80 characters with
  edits between them, so it holds many copied runs of every length), after the index exists;
- the poet seed's method for the same job, for reference: at each position, grow a substring
  while Python's `in` finds it in the corpus text. It is quadratic, so it is timed on a prefix of
  the text and scaled linearly to 10,000 characters (an estimate, marked as such).
"""

from __future__ import annotations

import random
import tempfile
import time
from pathlib import Path

from benchmarks.report import Row
from runtime.markup.copy_index import DEFAULT_MIN_RUN, CopyIndex
from textgen_core.data.shakespeare import shakespeare_path

TEXT_CHARS = 10_000
SEED_SCAN_CHARS = 300


def model_like_text(corpus: str, n: int, seed: int = 0) -> str:
    rng = random.Random(seed)
    letters = "abcdefghijklmnopqrstuvwxyz ,.\n"
    parts: list[str] = []
    size = 0
    while size < n:
        length = int(rng.choice((5, 8, 12, 20, 40, 80)) * rng.uniform(0.7, 1.3))
        start = rng.randrange(len(corpus) - length)
        parts += [corpus[start:start + length], "".join(rng.choice(letters) for _ in range(3))]
        size += length + 3
    return "".join(parts)[:n]


def seed_scan(corpus: str, text: str, min_run: int) -> int:
    """The original's greedy walk; returns copied characters (to check it did the work)."""
    i = copied = 0
    while i < len(text):
        length = 0
        while i + length < len(text) and text[i:i + length + 1] in corpus:
            length += 1
        if length >= min_run:
            copied += length
            i += length
        else:
            i += 1
    return copied


def run() -> tuple[list[Row], dict]:
    path = shakespeare_path()
    corpus = path.read_text(encoding="utf-8")
    text = model_like_text(corpus, TEXT_CHARS)
    with tempfile.TemporaryDirectory() as cache:
        t0 = time.perf_counter()
        CopyIndex.for_files([path], [path.name], cache=Path(cache))
        build = time.perf_counter() - t0
        t0 = time.perf_counter()
        index = CopyIndex.for_files([path], [path.name], cache=Path(cache))
        load = time.perf_counter() - t0
        index.mark(text[:500])  # warm-up
        t0 = time.perf_counter()
        markup = index.mark(text, DEFAULT_MIN_RUN)
        mark = time.perf_counter() - t0
    t0 = time.perf_counter()
    seed_scan(corpus, text[:SEED_SCAN_CHARS], DEFAULT_MIN_RUN)
    seed_estimate = (time.perf_counter() - t0) * TEXT_CHARS / SEED_SCAN_CHARS
    reference = "seed's str-`in` scan, 10k chars (est.)"
    rows = [
        Row("markup", reference, seed_estimate, "s",
            note=f"timed on {SEED_SCAN_CHARS} characters, scaled linearly"),
        Row("markup", "mark 10k chars (index loaded)", mark, "s", reference=reference,
            note=f"{len(markup.runs)} runs, {markup.copied_share:.0%} copied; target < 1 s"),
        Row("markup", "load index + corpus", load, "s"),
        Row("markup", "build index (once per corpus)", build, "s", note=f"{len(corpus):,} characters"),
    ]
    info = {"markup_text_chars": TEXT_CHARS, "markup_runs": len(markup.runs),
            "markup_copied_share": markup.copied_share, "corpus_chars": len(corpus)}
    return rows, info
