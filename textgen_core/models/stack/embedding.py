"""Token and learned positional embeddings with hand-written backward passes.

The token embedding's backward SUMS the gradients of repeated token ids (`index_add_`); the
original project overwrote them, so a character seen twice in a batch learned from one occurrence.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from torch.autograd import Function


class EmbeddingFunction(Function):
    """out[b, t] = weight[ids[b, t]]."""

    @staticmethod
    def forward(ctx: Any, ids: Tensor, weight: Tensor) -> Tensor:
        ctx.save_for_backward(ids)
        ctx.num_embeddings = weight.shape[0]
        return weight[ids]  # (B, T, C)

    @staticmethod
    def backward(ctx: Any, grad_out: Tensor) -> tuple[None, Tensor]:
        (ids,) = ctx.saved_tensors
        C = grad_out.shape[-1]
        grad_weight = grad_out.new_zeros(ctx.num_embeddings, C)
        # Accumulate, do not assign: every occurrence of a token contributes to its row.
        grad_weight.index_add_(0, ids.reshape(-1), grad_out.reshape(-1, C))
        return None, grad_weight


class PositionalEmbeddingFunction(Function):
    """out[b, t] = x[b, t] + weight[t] for t < T."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, weight: Tensor) -> Tensor:
        ctx.block_size = weight.shape[0]
        return x + weight[: x.shape[1]]

    @staticmethod
    def backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor, Tensor]:
        T, C = grad_out.shape[1], grad_out.shape[2]
        grad_weight = grad_out.new_zeros(ctx.block_size, C)
        grad_weight[:T] = grad_out.sum(dim=0)  # each position's row sums over the batch
        return grad_out, grad_weight


class Embedding(nn.Module):
    def __init__(self, vocab_size: int, n_embd: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(vocab_size, n_embd) * 0.02)

    def forward(self, ids: Tensor, *, reference: bool = False) -> Tensor:
        if reference:
            return self.weight[ids]
        return EmbeddingFunction.apply(ids, self.weight)


class PositionalEmbedding(nn.Module):
    def __init__(self, block_size: int, n_embd: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(block_size, n_embd) * 0.02)

    def forward(self, x: Tensor, *, reference: bool = False) -> Tensor:
        if reference:
            return x + self.weight[: x.shape[1]]
        return PositionalEmbeddingFunction.apply(x, self.weight)
