"""The checks every model family makes when it rebuilds itself from a loaded checkpoint dict
(GPT, GAN, stack): the right kind, readable metadata, weights that fit. Each failure is a
CheckpointError with one readable line."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch

from textgen_core.errors import CheckpointError, ConfigError, TokenizerError


def require_kind(payload: dict[str, Any], kind: str) -> None:
    if payload.get("kind") != kind:
        raise CheckpointError(f"expected a {kind!r} checkpoint, got {payload.get('kind')!r}")


@contextmanager
def metadata_errors() -> Iterator[None]:
    """Inside: reading the config and tokenizer; a bad value becomes a CheckpointError."""
    try:
        yield
    except (ConfigError, TokenizerError, TypeError) as exc:
        raise CheckpointError(f"checkpoint metadata is invalid: {exc}") from None


def load_weights(model: torch.nn.Module, state: Any, what: str = "the model") -> None:
    """`model.load_state_dict(state)`, with the first line of a mismatch as the error."""
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"checkpoint weights do not fit {what}: {first[:200]}") from None


def check_dense_tensor(value: Any, where: str, *, floating: bool = True) -> torch.Tensor:
    """`value` as a tensor that a kernel may read and write in place: dense, contiguous (no
    broadcast, strided or overlapping view), its storage holding every element it claims, and
    floating-point unless `floating` is False. Fused optimizer kernels trust all of this."""
    if not isinstance(value, torch.Tensor):
        raise CheckpointError(f"checkpoint {where} is not a tensor (got {type(value).__name__})")
    if value.layout != torch.strided or value.is_meta or value.is_quantized:
        raise CheckpointError(f"checkpoint {where} is not a plain dense tensor")
    if floating and not value.dtype.is_floating_point:
        raise CheckpointError(f"checkpoint {where} has dtype {value.dtype}, not a floating-point type")
    if not value.is_contiguous():
        raise CheckpointError(f"checkpoint {where} is a strided, broadcast or overlapping view "
                              f"(strides {tuple(value.stride())} for shape {tuple(value.shape)})")
    needed = (value.storage_offset() + value.numel()) * value.element_size()
    if value.numel() and value.untyped_storage().nbytes() < needed:
        raise CheckpointError(f"checkpoint {where} claims more elements than its storage holds")
    return value
