"""TemporalDense: one weight matrix applied at every time step, with a hand-written backward."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn
from torch.autograd import Function


class DenseFunction(Function):
    """y = x @ W + b over the last axis; x is (..., in), W (in, out), b (out,)."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
        ctx.save_for_backward(x, weight)
        return x @ weight + bias

    @staticmethod
    def backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        x, weight = ctx.saved_tensors
        flat_x = x.reshape(-1, x.shape[-1])  # (N, in)
        flat_g = grad_out.reshape(-1, grad_out.shape[-1])  # (N, out)
        grad_x = grad_out @ weight.t()
        grad_weight = flat_x.t() @ flat_g
        grad_bias = flat_g.sum(dim=0)
        return grad_x, grad_weight, grad_bias


class ReLUFunction(Function):
    @staticmethod
    def forward(ctx: Any, x: Tensor) -> Tensor:
        out = x.clamp_min(0)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx: Any, grad_out: Tensor) -> Tensor:
        (out,) = ctx.saved_tensors
        return grad_out * (out > 0).to(grad_out.dtype)


def relu(x: Tensor, *, reference: bool = False) -> Tensor:
    return x.clamp_min(0) if reference else ReLUFunction.apply(x)


class TemporalDense(nn.Module):
    def __init__(self, in_features: int, out_features: int, std: float | None = None) -> None:
        super().__init__()
        std = 1.0 / math.sqrt(in_features) if std is None else std
        self.weight = nn.Parameter(torch.randn(in_features, out_features) * std)
        self.bias = nn.Parameter(torch.zeros(out_features))

    def forward(self, x: Tensor, *, reference: bool = False) -> Tensor:
        if reference:
            return x @ self.weight + self.bias
        return DenseFunction.apply(x, self.weight, self.bias)
