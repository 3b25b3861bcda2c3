"""Rebuild a model and its tokenizer from a loaded checkpoint dict."""

from __future__ import annotations

from typing import Any

from runtime.tokenizer import CharTokenizer, tokenizer_from_dict
from textgen_core.errors import CheckpointError
from textgen_core.models.checkpoint_checks import metadata_errors, require_kind
from textgen_core.models.gpt import GPT, GPTConfig
from textgen_core.models.size_limits import build_checked, check_counts, check_setting_types


def gpt_from_checkpoint(payload: dict[str, Any]) -> tuple[GPT, CharTokenizer]:
    """The GPT (on CPU, eval mode) and tokenizer stored in `payload` (see checkpoint.py); its
    sizes are bounded before anything is built (models/size_limits.py)."""
    require_kind(payload, "gpt")
    settings = check_setting_types(GPTConfig, payload.get("model_config"))
    with metadata_errors():
        config = GPTConfig.from_dict(settings)
        tokenizer = tokenizer_from_dict(payload["tokenizer"])
    if tokenizer.vocab_size != config.vocab_size:
        raise CheckpointError(
            f"checkpoint tokenizer has {tokenizer.vocab_size} tokens but the model expects "
            f"{config.vocab_size}"
        )
    check_counts(config, layers=("n_layer",), contexts=("block_size",))
    model = build_checked(lambda: GPT(config), payload["model"])
    model.eval()
    return model, tokenizer
