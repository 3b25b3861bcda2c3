"""Building blocks of the text GAN: attention, feed-forward, sinusoidal positions, the mapping
network, and the generator's noise and output blocks.

Attention is written out (matmul, softmax, matmul) instead of `scaled_dot_product_attention`:
the critic's gradient penalty differentiates through it twice, which the fused CPU kernels do
not support, and the explicit form exports to plain ONNX operators.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


def sinusoidal_positions(length: int, dim: int) -> Tensor:
    """(length, dim) sine/cosine encodings of "Attention Is All You Need"."""
    position = torch.arange(length, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    table = torch.zeros(length, dim)
    table[:, 0::2] = torch.sin(position * freq)
    table[:, 1::2] = torch.cos(position * freq)[:, : dim // 2]
    return table


class Attention(nn.Module):
    """Multi-head attention; queries from `x`, keys and values from `context` (default `x`)."""

    def __init__(self, dim: int, n_head: int) -> None:
        super().__init__()
        self.n_head = n_head
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor, context: Tensor | None = None) -> Tensor:
        context = x if context is None else context
        B, T, C = x.shape
        L = context.shape[1]
        h = self.n_head
        q = self.q(x).view(B, T, h, C // h).transpose(1, 2)  # (B, h, T, hs)
        k, v = self.kv(context).split(C, dim=2)
        k = k.view(B, L, h, C // h).transpose(1, 2)  # (B, h, L, hs)
        v = v.view(B, L, h, C // h).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(C // h))  # (B, h, T, L)
        y = att.softmax(dim=-1) @ v  # (B, h, T, hs)
        return self.proj(y.transpose(1, 2).reshape(B, T, C))


class FeedForward(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class MappingNetwork(nn.Module):
    """StyleGAN's mapping network: `depth` linear layers with LeakyReLU between them (without the
    nonlinearity the stack would collapse into one linear map)."""

    def __init__(self, width: int, depth: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for i in range(depth):
            layers.append(nn.Linear(width, width))
            if i < depth - 1:
                layers.append(nn.LeakyReLU(0.2))
        self.net = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z)


class NoiseBlock(nn.Module):
    """Self-attention → norm + skip → injected noise → cross-attention to the global noise →
    norm + skip → feed-forward → norm + skip (post-norm, as the seed describes)."""

    def __init__(self, dim: int, n_head: int, hidden: int) -> None:
        super().__init__()
        self.self_attn = Attention(dim, n_head)
        self.norm1 = nn.LayerNorm(dim)
        # Per-channel strength of the injected noise, learned (StyleGAN's noise scaling).
        self.noise_scale = nn.Parameter(torch.full((dim,), 0.1))
        self.cross_attn = Attention(dim, n_head)
        self.norm2 = nn.LayerNorm(dim)
        self.ffn = FeedForward(dim, hidden)
        self.norm3 = nn.LayerNorm(dim)

    def forward(self, x: Tensor, noise: Tensor, style: Tensor) -> Tensor:
        x = self.norm1(x + self.self_attn(x))
        x = x + self.noise_scale * noise
        x = self.norm2(x + self.cross_attn(x, style))
        return self.norm3(x + self.ffn(x))


class OutputBlock(nn.Module):
    """Self-attention → norm + skip → feed-forward → norm + skip; no noise."""

    def __init__(self, dim: int, n_head: int, hidden: int) -> None:
        super().__init__()
        self.attn = Attention(dim, n_head)
        self.norm1 = nn.LayerNorm(dim)
        self.ffn = FeedForward(dim, hidden)
        self.norm2 = nn.LayerNorm(dim)

    def forward(self, x: Tensor) -> Tensor:
        x = self.norm1(x + self.attn(x))
        return self.norm2(x + self.ffn(x))
