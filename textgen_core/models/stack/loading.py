"""Rebuild a stack and its tokenizer from a loaded checkpoint dict."""

from __future__ import annotations

from typing import Any

from runtime.tokenizer import CharTokenizer, tokenizer_from_dict
from textgen_core.errors import CheckpointError
from textgen_core.models.checkpoint_checks import metadata_errors, require_kind
from textgen_core.models.gpt import GPT, gpt_from_checkpoint
from textgen_core.models.size_limits import (
    MAX_CONTEXT,
    MAX_LAYERS,
    build_checked,
    check_counts,
    check_setting_types,
)
from textgen_core.models.stack.model import Stack
from textgen_core.models.stack.spec import StackConfig
from textgen_core.training.checkpoint import load_checkpoint


def stack_from_checkpoint(payload: dict[str, Any]) -> tuple[Stack, CharTokenizer]:
    """The stack (on CPU, eval mode) and tokenizer stored in `payload`; sizes are bounded before
    anything is built (models/size_limits.py)."""
    require_kind(payload, "stack")
    settings = check_setting_types(StackConfig, payload.get("model_config"))
    layers = settings.get("layers")
    if isinstance(layers, list) and len(layers) > MAX_LAYERS:  # before resolving them one by one
        raise CheckpointError(f"checkpoint model_config has {len(layers):,} layers; textgen builds "
                              f"at most {MAX_LAYERS}")
    with metadata_errors():
        config = StackConfig.from_dict(settings)
        tokenizer = tokenizer_from_dict(payload["tokenizer"])
    if tokenizer.vocab_size != config.vocab_size:
        raise CheckpointError(f"checkpoint tokenizer has {tokenizer.vocab_size} tokens but the "
                              f"model expects {config.vocab_size}")
    check_counts(config, contexts=("block_size",))
    for n, spec in enumerate(config.layers, start=1):
        if spec.get("block_size", 0) > MAX_CONTEXT:
            raise CheckpointError(f"checkpoint model_config layer {n} ({spec['type']}) has block_size "
                                  f"{spec['block_size']:,}; textgen supports contexts of at most "
                                  f"{MAX_CONTEXT:,} positions")
    model = build_checked(lambda: Stack(config), payload["model"], what="the layers")
    model.eval()
    return model, tokenizer


def load_gpt_or_stack(path: str) -> tuple[dict[str, Any], GPT | Stack, CharTokenizer]:
    """For the commands that serve both kinds (evaluate, sample): the checkpoint dict, its model
    (CPU, eval mode) and tokenizer."""
    payload = load_checkpoint(path)
    if payload["kind"] == "stack":
        return payload, *stack_from_checkpoint(payload)
    if payload["kind"] != "gpt":
        raise CheckpointError(f"{path} holds a {payload['kind']!r} model, but this command needs "
                              "a 'gpt' or 'stack' model")
    return payload, *gpt_from_checkpoint(payload)
