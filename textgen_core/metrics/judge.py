"""Judge NLL: how likely a character GPT trained on the same corpus finds a set of sentences.

Each sentence is read after a newline (the start of a line of text); the score is the mean
negative log-likelihood per character, in nats. Lower means more like the corpus to the judge;
it rewards fluent but repetitive text, which is why it is reported beside self-BLEU.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from runtime.tokenizer import CharTokenizer
from textgen_core.models.gpt import GPT


@torch.no_grad()
def judge_nll(model: GPT, tokenizer: CharTokenizer, texts: Sequence[str], batch_size: int = 64,
              device: torch.device | str = "cpu") -> tuple[float, int]:
    """(nats per character, sentences scored). Sentences with characters the judge does not
    know (e.g. `<unk>` where `<` is not in its vocabulary) are skipped; empty ones too."""
    start = tokenizer.encode("\n")[0] if "\n" in tokenizer.chars else 0
    limit = model.config.block_size
    rows = []
    for text in texts:
        if text and not tokenizer.unknown_characters(text):
            rows.append([start, *tokenizer.encode(text)][: limit + 1])
    if not rows:
        return math.nan, 0
    model.eval().to(device)
    total, count = 0.0, 0
    for i in range(0, len(rows), batch_size):
        chunk = rows[i : i + batch_size]
        width = max(len(r) for r in chunk)
        ids = torch.zeros((len(chunk), width), dtype=torch.long)
        targets = torch.full((len(chunk), width - 1), -100, dtype=torch.long)
        for j, row in enumerate(chunk):
            ids[j, : len(row)] = torch.tensor(row)
            targets[j, : len(row) - 1] = torch.tensor(row[1:])
        logits = model(ids[:, :-1].to(device))[0].float()
        loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten().to(device),
                               ignore_index=-100, reduction="sum")
        total += float(loss)
        count += int((targets != -100).sum())
    return total / count, len(rows)
