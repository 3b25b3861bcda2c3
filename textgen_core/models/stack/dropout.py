"""Inverted dropout with a hand-written backward. The mask is drawn outside the Function and
passed in, so gradcheck can hold it fixed and the backward reuses exactly the forward's mask."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from torch.autograd import Function


class DropoutFunction(Function):
    """out = x * mask, where mask holds 0 or 1/(1-p)."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, mask: Tensor) -> Tensor:
        ctx.save_for_backward(mask)
        return x * mask

    @staticmethod
    def backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor, None]:
        (mask,) = ctx.saved_tensors
        return grad_out * mask, None


def dropout_mask(x: Tensor, p: float) -> Tensor:
    keep = torch.rand_like(x) >= p
    return keep.to(x.dtype) / (1.0 - p)


class Dropout(nn.Module):
    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: Tensor, *, reference: bool = False) -> Tensor:
        if not self.training or self.p == 0.0:
            return x
        mask = dropout_mask(x, self.p)
        return x * mask if reference else DropoutFunction.apply(x, mask)
