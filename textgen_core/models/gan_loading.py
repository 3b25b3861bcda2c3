"""Rebuild the GAN and its word vocabulary from a loaded checkpoint dict."""

from __future__ import annotations

from typing import Any

from runtime.word_tokenizer import WordTokenizer
from textgen_core.errors import CheckpointError
from textgen_core.models.checkpoint_checks import load_weights, metadata_errors, require_kind
from textgen_core.models.gan import GAN, GANConfig


def gan_from_checkpoint(payload: dict[str, Any]) -> tuple[GAN, WordTokenizer]:
    """Both players (on CPU, eval mode) and the vocabulary stored in `payload`."""
    require_kind(payload, "gan")
    with metadata_errors():
        config = GANConfig.from_dict(dict(payload["model_config"]))
        tokenizer = WordTokenizer.from_dict(payload["tokenizer"])
    if tokenizer.vocab_size != config.vocab_size:
        raise CheckpointError(f"checkpoint vocabulary has {tokenizer.vocab_size} words but the model "
                              f"expects {config.vocab_size}")
    gan = GAN(config)
    load_weights(gan, payload["model"])
    gan.eval()
    return gan, tokenizer
