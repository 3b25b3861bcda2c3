"""Rebuild a model and its tokenizer from a loaded checkpoint dict."""

from __future__ import annotations

from typing import Any

from runtime.tokenizer import CharTokenizer, tokenizer_from_dict
from textgen_core.errors import CheckpointError
from textgen_core.models.checkpoint_checks import load_weights, metadata_errors, require_kind
from textgen_core.models.gpt import GPT, GPTConfig


def gpt_from_checkpoint(payload: dict[str, Any]) -> tuple[GPT, CharTokenizer]:
    """The GPT (on CPU, eval mode) and tokenizer stored in `payload` (see checkpoint.py)."""
    require_kind(payload, "gpt")
    with metadata_errors():
        config = GPTConfig.from_dict(dict(payload["model_config"]))
        tokenizer = tokenizer_from_dict(payload["tokenizer"])
    if tokenizer.vocab_size != config.vocab_size:
        raise CheckpointError(
            f"checkpoint tokenizer has {tokenizer.vocab_size} tokens but the model expects "
            f"{config.vocab_size}"
        )
    model = GPT(config)
    load_weights(model, payload["model"])
    model.eval()
    return model, tokenizer
