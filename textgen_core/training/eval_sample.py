"""The short text sample a GPT or stack run shows and logs at each evaluation: drawn in eval mode
from a fixed prompt (a newline when the vocabulary has one) and a fixed seed, so samples from one
evaluation to the next differ only by what the model learned."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch

from runtime.tokenizer import Tokenizer

SAMPLE_SEED = 0


def sample_text(model: torch.nn.Module, tokenizer: Tokenizer, max_new_tokens: int,
                pieces: Callable[[str], Iterable[str]]) -> str:
    """`pieces(prompt)` generates from the prompt; the model's train/eval mode is restored."""
    if max_new_tokens == 0:
        return ""
    prompt = ""  # the generators start an empty prompt at a line break (runtime.tokenizer.line_start_ids)
    was_training = model.training
    model.eval()
    try:
        return "".join(pieces(prompt))
    finally:
        model.train(was_training)
