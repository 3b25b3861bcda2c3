"""`Stack`: a model built from a resolved layer list (see spec.py).

forward(idx, targets, state) -> (logits, loss, next_state), the same triple as the GPT, so the
loss estimators and evaluation serve both. `state` holds one tuple per RNN/LSTM layer, in order
((h,) or (h, c), each (B, H)); None starts from zeros. `reference=True` runs the same math in
plain torch ops: for export, and as the autograd reference the hand-written backward is tested
against.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from runtime.stack import RECURRENT_TYPES
from textgen_core.models.stack.attention import MultiHeadSelfAttention
from textgen_core.models.stack.block import Block
from textgen_core.models.stack.dense import TemporalDense
from textgen_core.models.stack.dropout import Dropout
from textgen_core.models.stack.embedding import Embedding, PositionalEmbedding
from textgen_core.models.stack.layer_norm import LayerNorm
from textgen_core.models.stack.loss import CrossEntropyLoss
from textgen_core.models.stack.recurrent import LSTM, RNN
from textgen_core.models.stack.spec import StackConfig

State = list[tuple[Tensor, ...]]


def build_layer(spec: dict[str, Any]) -> nn.Module:
    kind = spec["type"]
    if kind == "Embedding":
        return Embedding(spec["vocab_size"], spec["n_embd"])
    if kind == "PositionalEmbedding":
        return PositionalEmbedding(spec["block_size"], spec["n_embd"])
    if kind == "TemporalDense":
        return TemporalDense(spec["in_features"], spec["out_features"])
    if kind == "MultiHeadSelfAttention":
        return MultiHeadSelfAttention(spec["n_embd"], spec["n_head"])
    if kind == "Block":
        return Block(spec["n_embd"], spec["n_head"], spec["dropout"], spec["ffn_factor"], spec["eps"])
    if kind == "LayerNorm":
        return LayerNorm(spec["n_embd"], spec["eps"])
    if kind == "Dropout":
        return Dropout(spec["p"])
    if kind == "RNN":
        return RNN(spec["in_features"], spec["hidden_size"])
    if kind == "LSTM":
        return LSTM(spec["in_features"], spec["hidden_size"])
    if kind == "CrossEntropyLoss":
        return CrossEntropyLoss(spec["vocab_size"])
    raise AssertionError(kind)  # spec.py admits only the types above


class Stack(nn.Module):
    def __init__(self, config: StackConfig) -> None:
        super().__init__()
        self.config = config
        # nn.ModuleList so that the optimizer and state_dict see every layer.
        self.layers = nn.ModuleList(build_layer(s) for s in config.layers[:-1])
        self.loss_layer = build_layer(config.layers[-1])
        self._recurrent = [s["type"] in RECURRENT_TYPES for s in config.layers[:-1]]

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def recurrent_modules(self) -> list[nn.Module]:
        return [m for m, r in zip(self.layers, self._recurrent, strict=True) if r]

    def empty_state(self, batch_size: int = 1, device: torch.device | str = "cpu",
                    dtype: torch.dtype = torch.float32) -> State:
        return [m.empty_state(batch_size, device, dtype) for m in self.recurrent_modules()]

    def forward(self, idx: Tensor, targets: Tensor | None = None, state: State | None = None, *,
                reference: bool = False) -> tuple[Tensor, Tensor | None, State]:
        T = idx.shape[1]
        tracing = torch.jit.is_tracing() or torch.compiler.is_compiling()
        if not tracing and self.config.windowed and self.config.block_size < T:
            raise ValueError(f"{T} positions exceed the context of {self.config.block_size}")
        x: Tensor = idx
        next_state: State = []
        k = 0
        for layer, recurrent in zip(self.layers, self._recurrent, strict=True):
            if recurrent:
                x, s = layer(x, None if state is None else state[k], reference=reference)
                next_state.append(s)
                k += 1
            else:
                x = layer(x, reference=reference)
        loss = None if targets is None else self.loss_layer(x, targets, reference=reference)
        return x, loss, next_state
