"""Rebuild the GAN and its word vocabulary from a loaded checkpoint dict."""

from __future__ import annotations

from typing import Any

from runtime.word_tokenizer import WordTokenizer
from textgen_core.errors import CheckpointError
from textgen_core.models.checkpoint_checks import metadata_errors, require_kind
from textgen_core.models.gan import GAN, GANConfig
from textgen_core.models.size_limits import build_checked, check_counts, check_setting_types


def gan_from_checkpoint(payload: dict[str, Any]) -> tuple[GAN, WordTokenizer]:
    """Both players (on CPU, eval mode) and the vocabulary stored in `payload`; sizes are
    bounded before anything is built (models/size_limits.py)."""
    require_kind(payload, "gan")
    settings = check_setting_types(GANConfig, payload.get("model_config"))
    with metadata_errors():
        config = GANConfig.from_dict(settings)
        tokenizer = WordTokenizer.from_dict(payload["tokenizer"])
    if tokenizer.vocab_size != config.vocab_size:
        raise CheckpointError(f"checkpoint vocabulary has {tokenizer.vocab_size} words but the model "
                              f"expects {config.vocab_size}")
    check_counts(config, layers=("n_mapping", "n_noise_blocks", "n_output_blocks", "critic_layers"),
                 contexts=("seq_len",))
    gan = build_checked(lambda: GAN(config), payload["model"])
    gan.eval()
    return gan, tokenizer
