"""What the sampler's window policy costs in quality: held-out loss of a trained checkpoint read
token by token the way each policy reads it, teacher-forced on the shakespeare val split.

- nanoGPT crop (reference): every token predicted from exactly the block_size tokens before it,
  each window computed from scratch (one full forward per token, what nanoGPT's sampler does);
- slide: the window of runtime/window.py, re-read when full (learned-position models);
- roll: the same window, but the cache drops its oldest positions instead of being re-read
  (rotary models), so kept keys/values were computed with context that has since left.

Slide and roll see between 3/4 of a window and a whole one, the crop always a whole one, so a
small gap between slide and the crop is expected from context length alone; roll against slide
isolates what keeping stale keys/values costs. Needs a rotary GPT checkpoint (the default model,
`python -m textgen_core.train`); without one the benchmark says so and measures nothing.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from benchmarks.report import Row
from runtime.window import RollingPast, keep_after_slide
from textgen_core.models.gpt import GPT

CHECKPOINT = Path("models/gpt.pt")
CROP = "nanoGPT crop (full window per token)"


def _nll(logits: torch.Tensor, target: int) -> float:
    return float(F.cross_entropy(logits.view(1, -1).float(), torch.tensor([target])))


@torch.inference_mode()
def crop_losses(model: GPT, tokens: np.ndarray, start: int) -> list[float]:
    block = model.config.block_size
    out = []
    for t in range(start, len(tokens) - 1):
        window = torch.from_numpy(tokens[t + 1 - block:t + 1].astype(np.int64))[None]
        out.append(_nll(model(window)[0][0, -1], int(tokens[t + 1])))
    return out


@torch.inference_mode()
def windowed_losses(model: GPT, tokens: np.ndarray, start: int, roll: bool) -> list[float]:
    """Losses of predicting tokens[start + 1:] when tokens[:start + 1] were read as a prompt
    (its last `keep` tokens) and each later token as a cached step, rolling or sliding."""
    block = model.config.block_size
    keep = keep_after_slide(block)
    ids = torch.from_numpy(tokens.astype(np.int64))[None]

    def read(begin: int, end: int, past: RollingPast) -> tuple[torch.Tensor, RollingPast]:
        positions = torch.arange(end - begin) + past.position
        logits, _, present = model(ids[:, begin:end], past_key_values=past.cache or None,
                                   positions=positions)
        return logits[0, -1], RollingPast(present, past.position + end - begin)

    logits, past = read(start + 1 - keep, start + 1, RollingPast([]))
    cached, out = keep, []
    for t in range(start + 1, len(tokens)):
        out.append(_nll(logits, int(tokens[t])))
        if cached < block:
            logits, past = read(t, t + 1, past)
            cached += 1
        elif roll:
            logits, past = read(t, t + 1, past.rolled(block + 1 - keep))
            cached = keep
        else:
            logits, past = read(t + 1 - keep, t + 1, RollingPast([]))
            cached = keep
    return out


def run(checkpoint: Path = CHECKPOINT, tokens_to_score: int = 3000) -> list[Row]:
    from textgen_core.data.corpus import resolve_corpus
    from textgen_core.data.token_store import load_token_splits
    from textgen_core.models.gpt import gpt_from_checkpoint
    from textgen_core.training.checkpoint import load_checkpoint

    if not checkpoint.is_file():
        return [Row("window", f"skipped: no checkpoint at {checkpoint}", 0.0, "nats")]
    model, tokenizer = gpt_from_checkpoint(load_checkpoint(checkpoint, kind="gpt"))
    model.eval()
    block = model.config.block_size
    tokens = load_token_splits(resolve_corpus("shakespeare", None, None), tokenizer).val
    tokens = np.asarray(tokens[: block + tokens_to_score + 1])
    start = block - 1  # the first prediction every policy makes from a full window
    crop = float(np.mean(crop_losses(model, tokens, start)))
    slide = float(np.mean(windowed_losses(model, tokens, start, roll=False)))
    rows = [Row("window", CROP, crop, "nats/token",
                note=f"{tokens_to_score} val tokens, {model.config.positions} positions"),
            Row("window", "slide (re-read when full)", slide, "nats/token", reference=CROP)]
    if model.config.rotary:
        roll = float(np.mean(windowed_losses(model, tokens, start, roll=True)))
        rows.append(Row("window", "roll (cache drops oldest)", roll, "nats/token", reference=CROP,
                        note=f"{roll - slide:+.4f} vs slide"))
    return rows
