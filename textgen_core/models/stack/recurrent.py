"""RNN (tanh) and LSTM layers with hand-written backpropagation through time.

Both take the previous hidden state and return the new one, so a sampler can feed one token at
a time and carry the state; training starts every window from zeros. The time loop runs over
the static sequence length, which torch.compile unrolls.

LSTM gates follow Hochreiter & Schmidhuber 1997 with a forget gate (Gers et al. 2000), packed as
[input, forget, cell, output] along the last axis of the (in, 4H) and (H, 4H) weights.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn
from torch.autograd import Function


class RNNFunction(Function):
    """h_t = tanh(x_t @ W_x + h_{t-1} @ W_h + b); returns every h_t, (B, T, H)."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, h0: Tensor, w_x: Tensor, w_h: Tensor, bias: Tensor) -> Tensor:
        pre_x = x @ w_x + bias  # (B, T, H): the input part of every step in one matmul
        h, outputs = h0, []
        for t in range(x.shape[1]):
            h = torch.tanh(pre_x[:, t] + h @ w_h)
            outputs.append(h)
        hs = torch.stack(outputs, dim=1)
        ctx.save_for_backward(x, h0, hs, w_x, w_h)
        return hs

    @staticmethod
    def backward(ctx: Any, grad_hs: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        x, h0, hs, w_x, w_h = ctx.saved_tensors
        T = x.shape[1]
        grad_h_next = torch.zeros_like(h0)
        grad_w_h = torch.zeros_like(w_h)
        grad_pre = []
        for t in reversed(range(T)):
            grad_h = grad_hs[:, t] + grad_h_next
            g = grad_h * (1 - hs[:, t] * hs[:, t])  # through tanh
            h_prev = hs[:, t - 1] if t > 0 else h0
            grad_w_h = grad_w_h + h_prev.t() @ g
            grad_h_next = g @ w_h.t()
            grad_pre.append(g)
        grad_pre_all = torch.stack(grad_pre[::-1], dim=1)  # (B, T, H)
        flat = grad_pre_all.reshape(-1, grad_pre_all.shape[-1])
        grad_x = grad_pre_all @ w_x.t()
        grad_w_x = x.reshape(-1, x.shape[-1]).t() @ flat
        return grad_x, grad_h_next, grad_w_x, grad_w_h, flat.sum(dim=0)


def rnn_reference(x: Tensor, h0: Tensor, w_x: Tensor, w_h: Tensor, bias: Tensor) -> Tensor:
    pre_x = x @ w_x + bias
    h, outputs = h0, []
    for t in range(x.shape[1]):
        h = torch.tanh(pre_x[:, t] + h @ w_h)
        outputs.append(h)
    return torch.stack(outputs, dim=1)


class LSTMFunction(Function):
    """Returns every h_t (B, T, H) and the last cell state c_T (B, H)."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, h0: Tensor, c0: Tensor, w_x: Tensor, w_h: Tensor,
                bias: Tensor) -> tuple[Tensor, Tensor]:
        H = h0.shape[-1]
        pre_x = x @ w_x + bias  # (B, T, 4H)
        h, c = h0, c0
        hs, cs, acts = [], [], []
        for t in range(x.shape[1]):
            z = pre_x[:, t] + h @ w_h
            ifo = torch.sigmoid(torch.cat([z[:, : 2 * H], z[:, 3 * H :]], dim=1))
            i, f, o = ifo[:, :H], ifo[:, H : 2 * H], ifo[:, 2 * H :]
            g = torch.tanh(z[:, 2 * H : 3 * H])
            c = f * c + i * g
            h = o * torch.tanh(c)
            hs.append(h)
            cs.append(c)
            acts.append(torch.cat([i, f, g, o], dim=1))
        h_all, c_all, act_all = torch.stack(hs, 1), torch.stack(cs, 1), torch.stack(acts, 1)
        ctx.save_for_backward(x, h0, c0, h_all, c_all, act_all, w_x, w_h)
        return h_all, c_all[:, -1].clone()

    @staticmethod
    def backward(ctx: Any, grad_hs: Tensor, grad_c_last: Tensor
                 ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
        x, h0, c0, h_all, c_all, act_all, w_x, w_h = ctx.saved_tensors
        H, T = h0.shape[-1], x.shape[1]
        grad_h_next = torch.zeros_like(h0)
        grad_c_next = grad_c_last
        grad_w_h = torch.zeros_like(w_h)
        grad_z = []
        for t in reversed(range(T)):
            act = act_all[:, t]
            i, f, g, o = act[:, :H], act[:, H : 2 * H], act[:, 2 * H : 3 * H], act[:, 3 * H :]
            c_prev = c_all[:, t - 1] if t > 0 else c0
            h_prev = h_all[:, t - 1] if t > 0 else h0
            tanh_c = torch.tanh(c_all[:, t])
            grad_h = grad_hs[:, t] + grad_h_next
            grad_c = grad_h * o * (1 - tanh_c * tanh_c) + grad_c_next
            dz = torch.cat([
                grad_c * g * i * (1 - i),  # input gate, through its sigmoid
                grad_c * c_prev * f * (1 - f),  # forget gate
                grad_c * i * (1 - g * g),  # cell candidate, through tanh
                grad_h * tanh_c * o * (1 - o),  # output gate
            ], dim=1)
            grad_w_h = grad_w_h + h_prev.t() @ dz
            grad_h_next = dz @ w_h.t()
            grad_c_next = grad_c * f
            grad_z.append(dz)
        grad_z_all = torch.stack(grad_z[::-1], dim=1)  # (B, T, 4H)
        flat = grad_z_all.reshape(-1, 4 * H)
        grad_x = grad_z_all @ w_x.t()
        grad_w_x = x.reshape(-1, x.shape[-1]).t() @ flat
        return grad_x, grad_h_next, grad_c_next, grad_w_x, grad_w_h, flat.sum(dim=0)


def lstm_reference(x: Tensor, h0: Tensor, c0: Tensor, w_x: Tensor, w_h: Tensor,
                   bias: Tensor) -> tuple[Tensor, Tensor]:
    H = h0.shape[-1]
    pre_x = x @ w_x + bias
    h, c, hs = h0, c0, []
    for t in range(x.shape[1]):
        z = pre_x[:, t] + h @ w_h
        i = torch.sigmoid(z[:, :H])
        f = torch.sigmoid(z[:, H : 2 * H])
        g = torch.tanh(z[:, 2 * H : 3 * H])
        o = torch.sigmoid(z[:, 3 * H :])
        c = f * c + i * g
        h = o * torch.tanh(c)
        hs.append(h)
    return torch.stack(hs, dim=1), c


class RNN(nn.Module):
    state_names = ("h",)

    def __init__(self, in_features: int, hidden_size: int) -> None:
        super().__init__()
        bound = 1.0 / math.sqrt(hidden_size)
        self.hidden_size = hidden_size
        self.w_x = nn.Parameter(torch.empty(in_features, hidden_size).uniform_(-bound, bound))
        self.w_h = nn.Parameter(torch.empty(hidden_size, hidden_size).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.zeros(hidden_size))

    def empty_state(self, batch_size: int, device: torch.device | str = "cpu",
                    dtype: torch.dtype = torch.float32) -> tuple[Tensor, ...]:
        return (torch.zeros(batch_size, self.hidden_size, device=device, dtype=dtype),)

    def forward(self, x: Tensor, state: tuple[Tensor, ...] | None = None, *,
                reference: bool = False) -> tuple[Tensor, tuple[Tensor, ...]]:
        (h0,) = state if state is not None else self.empty_state(x.shape[0], x.device, x.dtype)
        fn = rnn_reference if reference else RNNFunction.apply
        hs = fn(x, h0, self.w_x, self.w_h, self.bias)
        return hs, (hs[:, -1],)


class LSTM(nn.Module):
    state_names = ("h", "c")

    def __init__(self, in_features: int, hidden_size: int) -> None:
        super().__init__()
        bound = 1.0 / math.sqrt(hidden_size)
        self.hidden_size = hidden_size
        self.w_x = nn.Parameter(torch.empty(in_features, 4 * hidden_size).uniform_(-bound, bound))
        self.w_h = nn.Parameter(torch.empty(hidden_size, 4 * hidden_size).uniform_(-bound, bound))
        bias = torch.zeros(4 * hidden_size)
        bias[hidden_size : 2 * hidden_size] = 1.0  # forget gate open at the start: longer memory
        self.bias = nn.Parameter(bias)

    def empty_state(self, batch_size: int, device: torch.device | str = "cpu",
                    dtype: torch.dtype = torch.float32) -> tuple[Tensor, ...]:
        zeros = torch.zeros(batch_size, self.hidden_size, device=device, dtype=dtype)
        return (zeros, zeros.clone())

    def forward(self, x: Tensor, state: tuple[Tensor, ...] | None = None, *,
                reference: bool = False) -> tuple[Tensor, tuple[Tensor, ...]]:
        h0, c0 = state if state is not None else self.empty_state(x.shape[0], x.device, x.dtype)
        fn = lstm_reference if reference else LSTMFunction.apply
        hs, c_last = fn(x, h0, c0, self.w_x, self.w_h, self.bias)
        return hs, (hs[:, -1], c_last)
