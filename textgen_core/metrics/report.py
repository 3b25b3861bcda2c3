"""One row of the quality/diversity table per sentence source, and its text rendering."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from runtime.word_tokenizer import UNK, detokenize
from textgen_core.metrics.bleu import References, bleu, self_bleu

ORDERS = (2, 3, 4)


@dataclass
class Row:
    name: str
    bleu: dict[int, float]
    self_bleu: dict[int, float]
    judge_nll: float
    reverse_nll: float  # held-out sentences under a bigram model of these (reverse.py)
    mean_words: float
    distinct: float  # fraction of distinct sentences
    count: int
    examples: list[str]


def unk_never_matches(sentences: list[list[str]]) -> list[list[str]]:
    """Each `<unk>` replaced by a word of its own: a word outside the vocabulary (for a char
    GPT, mostly a misspelling) is not evidence of quality, and two of them are not the same word."""
    return [[f"<unk {i}.{j}>" if w == UNK else w for j, w in enumerate(s)] for i, s in enumerate(sentences)]


def measure(name: str, sentences: list[list[str]], references: References,
            judge: Callable[[list[str]], float] | None = None, self_bleu_count: int = 500,
            reverse: Callable[[list[list[str]]], float] | None = None) -> Row:
    texts = [detokenize(s) for s in sentences]
    scored = unk_never_matches(sentences)
    # Self-BLEU is quadratic in spirit; a fixed-size subset keeps rows comparable and fast.
    subset = scored[:self_bleu_count]
    return Row(
        name=name,
        bleu={n: bleu(scored, references, n) for n in ORDERS},
        self_bleu={n: self_bleu(subset, n) for n in ORDERS},
        judge_nll=judge(texts) if judge is not None else math.nan,
        reverse_nll=reverse(sentences) if reverse is not None else math.nan,
        mean_words=sum(len(s) for s in sentences) / max(1, len(sentences)),
        distinct=len({tuple(s) for s in sentences}) / max(1, len(sentences)),
        count=len(sentences),
        examples=texts[:3],
    )


def _f(value: float) -> str:
    return "-" if not math.isfinite(value) else f"{value:.3f}"


def render(rows: list[Row], header: str) -> str:
    """A Markdown table (pastes into the README as it is) and a few examples per row."""
    lines = [header, "",
             "| sentences | BLEU-2 | BLEU-3 | BLEU-4 | self-BLEU-2 | self-BLEU-3 | self-BLEU-4 "
             "| judge NLL | reverse NLL | words | distinct |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        cells = [_f(r.bleu[n]) for n in ORDERS] + [_f(r.self_bleu[n]) for n in ORDERS]
        lines.append(f"| {r.name} | " + " | ".join(cells)
                     + f" | {_f(r.judge_nll)} | {_f(r.reverse_nll)} | {r.mean_words:.1f} | "
                       f"{r.distinct:.0%} |")
    lines.append("")
    for r in rows:
        lines.append(f"{r.name}:")
        lines += [f"  {t}" for t in r.examples]
    return "\n".join(lines)
