"""LayerNorm over the last axis with a hand-written backward (Ba et al. 2016).

`eps` inside the square root keeps a constant feature vector finite; the original project had
none and produced NaN on such inputs.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from torch.autograd import Function


class LayerNormFunction(Function):
    @staticmethod
    def forward(ctx: Any, x: Tensor, gamma: Tensor, beta: Tensor, eps: float) -> Tensor:
        mean = x.mean(dim=-1, keepdim=True)
        var = x.var(dim=-1, unbiased=False, keepdim=True)
        rstd = torch.rsqrt(var + eps)
        x_hat = (x - mean) * rstd
        ctx.save_for_backward(x_hat, rstd, gamma)
        return x_hat * gamma + beta

    @staticmethod
    def backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor, Tensor, Tensor, None]:
        x_hat, rstd, gamma = ctx.saved_tensors
        C = x_hat.shape[-1]
        reduce_dims = tuple(range(grad_out.dim() - 1))
        grad_gamma = (grad_out * x_hat).sum(dim=reduce_dims)
        grad_beta = grad_out.sum(dim=reduce_dims)
        g = grad_out * gamma  # d loss / d x_hat
        # d x_hat / d x removes the mean and the component along x_hat, then rescales.
        grad_x = rstd * (g - g.sum(-1, keepdim=True) / C - x_hat * (g * x_hat).sum(-1, keepdim=True) / C)
        return grad_x, grad_gamma, grad_beta, None


def layer_norm_reference(x: Tensor, gamma: Tensor, beta: Tensor, eps: float) -> Tensor:
    mean = x.mean(dim=-1, keepdim=True)
    var = x.var(dim=-1, unbiased=False, keepdim=True)
    return (x - mean) * torch.rsqrt(var + eps) * gamma + beta


class LayerNorm(nn.Module):
    def __init__(self, n_embd: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(n_embd))
        self.bias = nn.Parameter(torch.zeros(n_embd))

    def forward(self, x: Tensor, *, reference: bool = False) -> Tensor:
        if reference:
            return layer_norm_reference(x, self.weight, self.bias, self.eps)
        return LayerNormFunction.apply(x, self.weight, self.bias, self.eps)
