"""Softmax cross-entropy with a hand-written backward.

The loss is the mean over every predicted position and the gradient carries the same 1/N, so the
number printed is the number being minimised (the original scaled them differently).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from torch.autograd import Function


class CrossEntropyFunction(Function):
    """mean over positions of -log softmax(logits)[target]; logits (..., V), targets (...)."""

    @staticmethod
    def forward(ctx: Any, logits: Tensor, targets: Tensor) -> Tensor:
        V = logits.shape[-1]
        flat = logits.reshape(-1, V)
        flat_t = targets.reshape(-1)
        log_probs = flat - torch.logsumexp(flat, dim=-1, keepdim=True)  # stable log-softmax
        ctx.save_for_backward(log_probs, flat_t)
        ctx.logits_shape = logits.shape
        return -log_probs.gather(1, flat_t.unsqueeze(1)).mean()

    @staticmethod
    def backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor, None]:
        log_probs, flat_t = ctx.saved_tensors
        N = log_probs.shape[0]
        grad = log_probs.exp()  # softmax
        grad.scatter_add_(1, flat_t.unsqueeze(1), -torch.ones_like(flat_t, dtype=grad.dtype).unsqueeze(1))
        grad = grad * (grad_out / N)
        return grad.reshape(ctx.logits_shape), None


def cross_entropy_reference(logits: Tensor, targets: Tensor) -> Tensor:
    V = logits.shape[-1]
    log_probs = torch.log_softmax(logits.reshape(-1, V), dim=-1)
    return -log_probs.gather(1, targets.reshape(-1, 1)).mean()


class CrossEntropyLoss(nn.Module):
    def __init__(self, vocab_size: int) -> None:
        super().__init__()
        self.vocab_size = vocab_size

    def forward(self, logits: Tensor, targets: Tensor, *, reference: bool = False) -> Tensor:
        if reference:
            return cross_entropy_reference(logits, targets)
        return CrossEntropyFunction.apply(logits, targets)
