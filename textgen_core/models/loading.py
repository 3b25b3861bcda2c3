"""Rebuild a model and its tokenizer from a loaded checkpoint dict."""

from __future__ import annotations

from typing import Any

from runtime.tokenizer import CharTokenizer, tokenizer_from_dict
from textgen_core.errors import CheckpointError, ConfigError, TokenizerError
from textgen_core.models.gpt import GPT, GPTConfig


def gpt_from_checkpoint(payload: dict[str, Any]) -> tuple[GPT, CharTokenizer]:
    """The GPT (on CPU, eval mode) and tokenizer stored in `payload` (see checkpoint.py)."""
    if payload.get("kind") != "gpt":
        raise CheckpointError(f"expected a 'gpt' checkpoint, got {payload.get('kind')!r}")
    try:
        config = GPTConfig.from_dict(dict(payload["model_config"]))
        tokenizer = tokenizer_from_dict(payload["tokenizer"])
    except (ConfigError, TokenizerError, TypeError) as exc:
        raise CheckpointError(f"checkpoint metadata is invalid: {exc}") from None
    if tokenizer.vocab_size != config.vocab_size:
        raise CheckpointError(
            f"checkpoint tokenizer has {tokenizer.vocab_size} tokens but the model expects "
            f"{config.vocab_size}"
        )
    model = GPT(config)
    try:
        model.load_state_dict(payload["model"])
    except (RuntimeError, TypeError, AttributeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"checkpoint weights do not fit the model: {first[:200]}") from None
    model.eval()
    return model, tokenizer
