"""The yoke: a narrow feed-forward at one block of the GPT (the compression variant of the
torch-transformer-poet seed), optionally with a recurrent state.

    h_t = gelu(W1 · x_t + W_s · s)        (B, T, H), H = the yoke's hidden width
    out_t = W2 · h_t

Stateful yoke, what "state" means: `s` is ONE vector per sequence, the bottleneck activation h of
the position just before the current window's first token, as computed by the window that held
that position (in training: the previous window's last position). It is added through the learned
map W_s to every position's pre-activation of the current window, so a window is a function of
(its tokens, s) only, whatever the cache holds. That one definition is shared by training
(consecutive windows, state detached between them: truncated backpropagation through time),
cached sampling (the state is fixed for the whole window; on a slide the row before the new
window's start is carried, runtime/yoke_state.py) and export (state in, every position's h out).
A zero state means "no earlier window"; W_s has no bias, so it adds exactly nothing then.
"""

from __future__ import annotations

from torch import Tensor, nn
from torch.nn import functional as F


class YokeMLP(nn.Module):
    def __init__(self, n_embd: int, hidden: int, *, bias: bool, dropout: float,
                 stateful: bool) -> None:
        super().__init__()
        self.c_fc = nn.Linear(n_embd, hidden, bias=bias)
        self.c_proj = nn.Linear(hidden, n_embd, bias=bias)
        # Named c_state, not c_proj: the GPT's scaled init of residual projections must not hit it.
        self.c_state = nn.Linear(hidden, hidden, bias=False) if stateful else None
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, state: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Output (B, T, C) and bottleneck activation h (B, T, H); `state` (B, H) or None."""
        pre = self.c_fc(x)  # (B, T, H)
        if self.c_state is not None and state is not None:
            pre = pre + self.c_state(state.to(pre.dtype)).unsqueeze(1)  # same state, every position
        h = F.gelu(pre)
        return self.dropout(self.c_proj(h)), h
