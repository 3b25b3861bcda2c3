"""Rebuild a stack and its tokenizer from a loaded checkpoint dict."""

from __future__ import annotations

from typing import Any

from runtime.tokenizer import CharTokenizer, tokenizer_from_dict
from textgen_core.errors import CheckpointError
from textgen_core.models.checkpoint_checks import load_weights, metadata_errors, require_kind
from textgen_core.models.gpt import GPT
from textgen_core.models.loading import gpt_from_checkpoint
from textgen_core.models.stack.model import Stack
from textgen_core.models.stack.spec import StackConfig
from textgen_core.training.checkpoint import load_checkpoint


def stack_from_checkpoint(payload: dict[str, Any]) -> tuple[Stack, CharTokenizer]:
    """The stack (on CPU, eval mode) and tokenizer stored in `payload`."""
    require_kind(payload, "stack")
    with metadata_errors():
        config = StackConfig.from_dict(dict(payload["model_config"]))
        tokenizer = tokenizer_from_dict(payload["tokenizer"])
    if tokenizer.vocab_size != config.vocab_size:
        raise CheckpointError(f"checkpoint tokenizer has {tokenizer.vocab_size} tokens but the "
                              f"model expects {config.vocab_size}")
    model = Stack(config)
    load_weights(model, payload["model"], what="the layers")
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
