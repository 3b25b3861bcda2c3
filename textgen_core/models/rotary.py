"""Rotary position embedding (RoPE; Su et al. 2021) for the GPT's queries and keys.

Each head's query and key are rotated, pair of channels by pair, by an angle proportional to the
token's position, so their dot product depends only on how far apart the two tokens are. That is
what lets a sampler keep its key/value cache when the context window is full: it drops the oldest
positions and goes on counting (runtime/window.py), where learned absolute positions force it to
re-read the window. Channels are paired as (i, i + d/2) (the GPT-NeoX layout).

The angle is `position * base ** (-2i / d)`; its cos and sin are tabulated once per model, in
float64 rounded to float32, for every position a sampler can reach (`rotary_positions`), and
torch and the exported graph read the same table, so both rotate identically.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn import functional as F

from runtime.window import roll_limit

ROTARY_BASE = 10_000.0


def rotary_positions(block_size: int) -> int:
    """Positions tabulated: a rolling sampler counts up to roll_limit + block_size
    (runtime/window.py); training and a fresh window use the first block_size."""
    return roll_limit(block_size) + block_size


def inverse_frequencies(head_size: int, base: float = ROTARY_BASE) -> Tensor:
    """(head_size / 2,) float64 angle per position step of each channel pair."""
    return base ** -(torch.arange(0, head_size, 2, dtype=torch.float64) / head_size)


def rotary_cache(head_size: int, positions: int) -> tuple[Tensor, Tensor]:
    """cos and sin of every pair's angle at positions 0..positions-1, each (positions, d/2)
    float32, computed in float64 so that far positions are as exact as near ones. The exported
    graph carries the same tables (onnxruntime's RotaryEmbedding reads them directly)."""
    angles = torch.arange(positions, dtype=torch.float64).unsqueeze(1) * inverse_frequencies(head_size)
    return angles.cos().float(), angles.sin().float()


def rotary_tables(positions: Tensor, cos_cache: Tensor, sin_cache: Tensor) -> tuple[Tensor, Tensor]:
    """Full-width tables, each (B or 1, T, 1, d), for `positions` (T,) or (B, T) int64: cos of
    every pair's angle twice, and its sin with the first half negated, so that a rotation is
    `x * cos + swap_halves(x) * sin`."""
    if positions.dim() == 1:
        positions = positions.unsqueeze(0)
    cos, sin = F.embedding(positions, cos_cache), F.embedding(positions, sin_cache)  # (B, T, d/2)
    return torch.cat((cos, cos), dim=-1).unsqueeze(2), torch.cat((-sin, sin), dim=-1).unsqueeze(2)


def _swap_halves(x: Tensor) -> Tensor:
    first, second = x.chunk(2, dim=-1)
    return torch.cat((second, first), dim=-1)


def _rotated(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    out = x * cos
    return out.addcmul_(_swap_halves(x), sin)  # three passes over x instead of eight


class _Rotate(torch.autograd.Function):
    """The rotation with its backward written out: the transpose of a rotation is the rotation
    by the opposite angle, so the gradient is one more rotation and only the small tables are
    kept for it (autograd would keep x and the products). Checked by gradcheck in the tests."""

    @staticmethod
    def forward(ctx, x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
        ctx.save_for_backward(cos, sin)
        return _rotated(x, cos, sin)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None, None]:
        cos, sin = ctx.saved_tensors
        return _rotated(grad, cos, -sin), None, None


def rotate(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """`x` (B, T, heads, d) rotated by the tables; the heads may be queries and keys together."""
    cos, sin = cos.to(x.dtype), sin.to(x.dtype)
    if x.requires_grad and torch.is_grad_enabled() and not torch.jit.is_tracing():
        return _Rotate.apply(x, cos, sin)  # training; exporters trace the plain ops
    return _rotated(x, cos, sin)
