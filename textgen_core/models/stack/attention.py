"""Causal multi-head self-attention with a hand-written backward (Vaswani et al. 2017).

The causal mask is built from the input's shape (no data-dependent Python control flow), so the
Function traces under torch.compile and torch.export.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn
from torch.autograd import Function


def _split_heads(t: Tensor, n_head: int) -> Tensor:
    B, T, C = t.shape
    return t.view(B, T, n_head, C // n_head).transpose(1, 2)  # (B, nh, T, hs)


def _merge_heads(t: Tensor) -> Tensor:
    B, nh, T, hs = t.shape
    return t.transpose(1, 2).reshape(B, T, nh * hs)  # (B, T, C)


def _causal_mask(T: int, device: torch.device) -> Tensor:
    return torch.ones(T, T, dtype=torch.bool, device=device).triu(1)  # True above the diagonal


class AttentionFunction(Function):
    """out = merge(softmax(mask(q k^T / sqrt(hs))) v) @ W_out + b_out, with q, k, v = x @ W_qkv + b_qkv."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, w_qkv: Tensor, b_qkv: Tensor, w_out: Tensor, b_out: Tensor,
                n_head: int) -> Tensor:
        _, T, C = x.shape  # (B, T, C)
        scale = 1.0 / math.sqrt(C // n_head)
        q, k, v = (x @ w_qkv + b_qkv).split(C, dim=2)
        q, k, v = _split_heads(q, n_head), _split_heads(k, n_head), _split_heads(v, n_head)
        scores = (q @ k.transpose(-2, -1)) * scale  # (B, nh, T, T)
        scores = scores.masked_fill(_causal_mask(T, x.device), float("-inf"))
        probs = torch.softmax(scores, dim=-1)
        y = _merge_heads(probs @ v)  # (B, T, C)
        ctx.save_for_backward(x, q, k, v, probs, y, w_qkv, w_out)
        ctx.n_head, ctx.scale = n_head, scale
        return y @ w_out + b_out

    @staticmethod
    def backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, None]:
        x, q, k, v, probs, y, w_qkv, w_out = ctx.saved_tensors
        C = x.shape[-1]
        flat_g = grad_out.reshape(-1, C)
        grad_w_out = y.reshape(-1, C).t() @ flat_g
        grad_b_out = flat_g.sum(dim=0)
        grad_y = _split_heads(grad_out @ w_out.t(), ctx.n_head)  # (B, nh, T, hs)
        grad_probs = grad_y @ v.transpose(-2, -1)  # (B, nh, T, T)
        grad_v = probs.transpose(-2, -1) @ grad_y
        # Softmax backward: p * (g - sum(g * p)); masked entries have p = 0 and get no gradient.
        grad_scores = probs * (grad_probs - (grad_probs * probs).sum(dim=-1, keepdim=True))
        grad_scores = grad_scores * ctx.scale
        grad_q = grad_scores @ k
        grad_k = grad_scores.transpose(-2, -1) @ q
        grad_qkv = torch.cat([_merge_heads(grad_q), _merge_heads(grad_k), _merge_heads(grad_v)], dim=2)
        flat_qkv = grad_qkv.reshape(-1, 3 * C)
        grad_x = grad_qkv @ w_qkv.t()
        grad_w_qkv = x.reshape(-1, C).t() @ flat_qkv
        grad_b_qkv = flat_qkv.sum(dim=0)
        return grad_x, grad_w_qkv, grad_b_qkv, grad_w_out, grad_b_out, None


def attention_reference(x: Tensor, w_qkv: Tensor, b_qkv: Tensor, w_out: Tensor, b_out: Tensor,
                        n_head: int) -> Tensor:
    """The same math in plain torch ops (autograd; export)."""
    _, T, C = x.shape
    q, k, v = (x @ w_qkv + b_qkv).split(C, dim=2)
    q, k, v = _split_heads(q, n_head), _split_heads(k, n_head), _split_heads(v, n_head)
    scores = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(C // n_head))
    scores = scores.masked_fill(_causal_mask(T, x.device), float("-inf"))
    return _merge_heads(torch.softmax(scores, dim=-1) @ v) @ w_out + b_out


class MultiHeadSelfAttention(nn.Module):
    def __init__(self, n_embd: int, n_head: int) -> None:
        super().__init__()
        self.n_head = n_head
        self.w_qkv = nn.Parameter(torch.randn(n_embd, 3 * n_embd) * 0.02)
        self.b_qkv = nn.Parameter(torch.zeros(3 * n_embd))
        self.w_out = nn.Parameter(torch.randn(n_embd, n_embd) * 0.02)
        self.b_out = nn.Parameter(torch.zeros(n_embd))

    def forward(self, x: Tensor, *, reference: bool = False) -> Tensor:
        args = (x, self.w_qkv, self.b_qkv, self.w_out, self.b_out, self.n_head)
        return attention_reference(*args) if reference else AttentionFunction.apply(*args)
