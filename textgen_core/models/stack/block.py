"""A pre-LayerNorm transformer block: x + Attn(LN(x)), then x + FFN(LN(x)), FFN = ReLU MLP.

The block is a composition of the hand-written layers (LayerNorm, attention, TemporalDense,
ReLU, Dropout); autograd only chains their backward functions and adds the two residual paths.
"""

from __future__ import annotations

from torch import Tensor, nn

from textgen_core.models.stack.attention import MultiHeadSelfAttention
from textgen_core.models.stack.dense import TemporalDense, relu
from textgen_core.models.stack.dropout import Dropout
from textgen_core.models.stack.layer_norm import LayerNorm


class Block(nn.Module):
    def __init__(self, n_embd: int, n_head: int, dropout: float = 0.0, ffn_factor: int = 4,
                 eps: float = 1e-5) -> None:
        super().__init__()
        self.ln_1 = LayerNorm(n_embd, eps)
        self.attn = MultiHeadSelfAttention(n_embd, n_head)
        self.drop_1 = Dropout(dropout)
        self.ln_2 = LayerNorm(n_embd, eps)
        self.fc_in = TemporalDense(n_embd, ffn_factor * n_embd, std=0.02)
        self.fc_out = TemporalDense(ffn_factor * n_embd, n_embd, std=0.02)
        self.drop_2 = Dropout(dropout)

    def forward(self, x: Tensor, *, reference: bool = False) -> Tensor:
        r = reference
        x = x + self.drop_1(self.attn(self.ln_1(x, reference=r), reference=r), reference=r)
        hidden = relu(self.fc_in(self.ln_2(x, reference=r), reference=r), reference=r)
        return x + self.drop_2(self.fc_out(hidden, reference=r), reference=r)
