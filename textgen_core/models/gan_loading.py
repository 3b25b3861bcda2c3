"""Rebuild the GAN and its word vocabulary from a loaded checkpoint dict."""

from __future__ import annotations

from typing import Any

from runtime.word_tokenizer import WordTokenizer
from textgen_core.errors import CheckpointError, ConfigError, TokenizerError
from textgen_core.models.gan import GAN, GANConfig


def gan_from_checkpoint(payload: dict[str, Any]) -> tuple[GAN, WordTokenizer]:
    """Both players (on CPU, eval mode) and the vocabulary stored in `payload`."""
    if payload.get("kind") != "gan":
        raise CheckpointError(f"expected a 'gan' checkpoint, got {payload.get('kind')!r}")
    try:
        config = GANConfig.from_dict(dict(payload["model_config"]))
        tokenizer = WordTokenizer.from_dict(payload["tokenizer"])
    except (ConfigError, TokenizerError, TypeError) as exc:
        raise CheckpointError(f"checkpoint metadata is invalid: {exc}") from None
    if tokenizer.vocab_size != config.vocab_size:
        raise CheckpointError(f"checkpoint vocabulary has {tokenizer.vocab_size} words but the model "
                              f"expects {config.vocab_size}")
    gan = GAN(config)
    try:
        gan.load_state_dict(payload["model"])
    except (RuntimeError, TypeError, AttributeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"checkpoint weights do not fit the model: {first[:200]}") from None
    gan.eval()
    return gan, tokenizer
