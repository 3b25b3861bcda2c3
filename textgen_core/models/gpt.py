"""A decoder-only GPT with a key/value cache.

After nanoGPT (Karpathy): learned token embeddings, pre-LayerNorm blocks of causal self-attention
and a 4x GELU feed-forward, tied input/output embeddings. Positions are rotary (queries and keys
rotated by position, textgen_core/models/rotary.py; the default) or nanoGPT's learned absolute
embeddings (`positions="learned"`, and every config saved before the setting existed). Attention goes through
`scaled_dot_product_attention` (flash/memory-efficient kernels where the device has them).

One forward serves training, cached sampling and export: given `past_key_values`, the new tokens
attend to the cached keys/values and `present` (the cache extended by them) is returned. The export
wrapper always passes a cache (empty on the first call), so one ONNX graph covers prefill and decode.

The `yoke` setting narrows one block's feed-forward to a bottleneck, optionally without its
residual or with a recurrent state (textgen_core/models/yoke.py).

Rebuild a model and its tokenizer from a loaded checkpoint dict.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from runtime.tokenizer import Tokenizer, tokenizer_from_dict
from runtime.yoke_spec import YokeSpec, parse_yoke
from textgen_core.errors import CheckpointError, ConfigError
from textgen_core.models.checkpoint_checks import metadata_errors, require_kind
from textgen_core.models.rotary import rotary_cache, rotary_positions, rotary_tables, rotate
from textgen_core.models.size_limits import build_checked, check_counts, check_setting_types
from textgen_core.models.yoke import YokeMLP

KeyValue = tuple[Tensor, Tensor]
POSITIONS = ("rotary", "learned")


@dataclass
class GPTConfig:
    vocab_size: int = 84
    block_size: int = 256
    n_layer: int = 6
    n_head: int = 6
    n_embd: int = 384
    dropout: float = 0.0
    bias: bool = False
    # "LAYER:HIDDEN[:no-residual][:stateful]" or "" (none); see runtime/yoke_spec.py.
    yoke: str = ""
    # "rotary" or "learned"; see the module docstring. Configs without the field are "learned".
    positions: str = "rotary"

    def __post_init__(self) -> None:
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                flag = "--" + name.replace("_", "-")
                raise ConfigError(f"{flag} must be a positive integer, got {value!r}")
        if self.n_embd % self.n_head:
            raise ConfigError(
                f"--n-embd ({self.n_embd}) must be divisible by --n-head ({self.n_head})"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"--dropout must be in [0, 1), got {self.dropout}")
        _ = self.yoke_spec  # validates the yoke setting now, with the flag's name
        if self.positions not in POSITIONS:
            raise ConfigError(f"--positions must be one of {', '.join(POSITIONS)}, "
                              f"got {self.positions!r}")
        if self.rotary and self.head_size % 2:
            raise ConfigError(f"rotary positions need an even head size; --n-embd / --n-head is "
                              f"{self.head_size} (use --positions learned or change the shape)")

    @property
    def rotary(self) -> bool:
        return self.positions == "rotary"

    @property
    def yoke_spec(self) -> YokeSpec | None:
        try:
            return parse_yoke(self.yoke, self.n_layer)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None

    @property
    def yoke_state_size(self) -> int:
        """Width of the recurrent state (0 unless the yoke is stateful)."""
        spec = self.yoke_spec
        return spec.hidden if spec is not None and spec.stateful else 0

    @property
    def head_size(self) -> int:
        return self.n_embd // self.n_head

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if not data["yoke"]:  # a plain GPT's config (checkpoint, ONNX metadata) stays as it was
            del data["yoke"]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GPTConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ConfigError(f"unknown GPT config field(s): {', '.join(sorted(unknown))}")
        return cls(**{"positions": "learned", **data})  # saved before rotary existed


class CausalSelfAttention(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.n_head = config.n_head
        self.n_embd = config.n_embd
        self.dropout = config.dropout
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.resid_dropout = nn.Dropout(config.dropout)

    def forward(self, x: Tensor, past: KeyValue | None = None,
                rope: tuple[Tensor, Tensor] | None = None) -> tuple[Tensor, KeyValue]:
        """`rope`: the (cos, sin) tables of these positions for a rotary model, else None."""
        B, T, C = x.size()
        hs = C // self.n_head
        if rope is None:
            q, k, v = self.c_attn(x).split(self.n_embd, dim=2)
        else:
            # Queries and keys rotate together, in (B, T, C) rows, which is the layout the
            # exported graph's fused attention takes (export/onnx_fusion.py).
            qk, v = self.c_attn(x).split((2 * C, C), dim=2)
            qk = rotate(qk.view(B, T, 2 * self.n_head, hs), *rope).view(B, T, 2 * C)
            q, k = qk.split(C, dim=2)
        q = q.view(B, T, self.n_head, hs).transpose(1, 2)  # (B, nh, T, hs)
        k = k.view(B, T, self.n_head, hs).transpose(1, 2)
        v = v.view(B, T, self.n_head, hs).transpose(1, 2)
        dropout_p = self.dropout if self.training else 0.0
        if past is None and q.device.type == "cpu" and q.dtype == torch.bfloat16:
            # CPU bf16 training (textgen_core/training/device.py): the CPU flash-attention
            # kernel's bf16 backward is ~5x slower than its fp32 one, so attention runs in fp32.
            with torch.autocast("cpu", enabled=False):
                y = F.scaled_dot_product_attention(q.float(), k.float(), v.float(),
                                                   dropout_p=dropout_p, is_causal=True).to(q.dtype)
        elif past is None:
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p, is_causal=True)
        else:
            k = torch.cat((past[0], k), dim=2)  # (B, nh, P+T, hs)
            v = torch.cat((past[1], v), dim=2)
            # Query i sits at absolute position P+i and may see keys 0..P+i; built from shapes
            # so that one exported graph works for any past length P, including 0.
            total = k.size(2)
            query_pos = torch.arange(T, device=x.device) + (total - T)
            key_pos = torch.arange(total, device=x.device)
            mask = key_pos.unsqueeze(0) <= query_pos.unsqueeze(1)  # (T, P+T)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p)
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.resid_dropout(self.c_proj(y)), (k, v)


class MLP(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.dropout(self.c_proj(F.gelu(self.c_fc(x))))


class Block(nn.Module):
    def __init__(self, config: GPTConfig, yoke: YokeSpec | None = None) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.mlp: nn.Module = MLP(config) if yoke is None else YokeMLP(
            config.n_embd, yoke.hidden, bias=config.bias, dropout=config.dropout,
            stateful=yoke.stateful,
        )
        self.mlp_residual = yoke is None or yoke.residual

    def forward(
        self, x: Tensor, past: KeyValue | None = None, state: Tensor | None = None,
        rope: tuple[Tensor, Tensor] | None = None,
    ) -> tuple[Tensor, KeyValue, Tensor | None]:
        """New residual stream, extended cache, and the yoke's bottleneck activation (None in a
        plain block)."""
        attn_out, present = self.attn(self.ln_1(x), past, rope)
        x = x + attn_out
        hidden = None
        if isinstance(self.mlp, YokeMLP):
            out, hidden = self.mlp(self.ln_2(x), state)
        else:
            out = self.mlp(self.ln_2(x))
        # Without its residual the yoke's output IS the stream: all later layers see of the
        # context is what passed the bottleneck.
        x = x + out if self.mlp_residual else out
        return x, present, hidden


class GPT(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        self.wpe = None if config.rotary else nn.Embedding(config.block_size, config.n_embd)
        if config.rotary:  # not parameters, not saved: functions of the shape
            cos, sin = rotary_cache(config.head_size, rotary_positions(config.block_size))
            self.register_buffer("rope_cos", cos, persistent=False)
            self.register_buffer("rope_sin", sin, persistent=False)
        self.drop = nn.Dropout(config.dropout)
        # nn.ModuleList, not a Python list: blocks in a plain list are invisible to the optimizer
        # and to state_dict (the bug behind the original poet's "trained" yoke models).
        yoke = config.yoke_spec
        self.blocks = nn.ModuleList(
            Block(config, yoke if yoke is not None and i == yoke.layer else None)
            for i in range(config.n_layer)
        )
        self.ln_f = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight  # weight tying (Press & Wolf 2017)
        self.apply(self._init_weights)
        # GPT-2 scales residual projections by 1/sqrt(2 * n_layer) so deep stacks start stable.
        for name, param in self.named_parameters():
            if name.endswith("c_proj.weight"):
                nn.init.normal_(param, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def num_parameters(self, non_embedding: bool = True) -> int:
        n = sum(p.numel() for p in self.parameters())
        return n - self.wpe.weight.numel() if non_embedding and self.wpe is not None else n

    def forward(
        self,
        idx: Tensor,
        targets: Tensor | None = None,
        past_key_values: list[KeyValue] | None = None,
        positions: Tensor | None = None,
    ) -> tuple[Tensor, Tensor | None, list[KeyValue]]:
        """Logits for every position of `idx` (B, T), the mean cross-entropy against `targets`
        when given, and the key/value cache extended by `idx` (one (k, v) per block, each
        (B, nh, P+T, hs)). A stateful yoke runs with a zero state (no earlier window).

        `positions` (T,) or (B, T): where the tokens sit, default P, P+1, ... after a cache of P.
        A rotary model's sampler passes larger ones once it has dropped the oldest cached
        positions (runtime/window.py); a learned-position model only takes the default."""
        logits, loss, present, _ = self.forward_stateful(idx, None, targets, past_key_values,
                                                         positions)
        return logits, loss, present

    def forward_stateful(
        self,
        idx: Tensor,
        yoke_state: Tensor | None,
        targets: Tensor | None = None,
        past_key_values: list[KeyValue] | None = None,
        positions: Tensor | None = None,
    ) -> tuple[Tensor, Tensor | None, list[KeyValue], Tensor | None]:
        """`forward` with the yoke's state (B, H) of this window (None: zero) as an input and
        the yoke's bottleneck activation of every position (B, T, H) as a fourth output (None
        without a yoke); see textgen_core/models/yoke.py for what the state means."""
        _, T = idx.size()
        past_len = 0 if past_key_values is None else past_key_values[0][0].size(2)
        # Shapes are symbolic while tracing/compiling; the check is for eager callers.
        tracing = torch.jit.is_tracing() or torch.compiler.is_compiling()
        if not tracing and past_len + T > self.config.block_size:
            raise ValueError(f"{past_len + T} positions exceed the context of {self.config.block_size}")
        if positions is None:
            positions = torch.arange(T, dtype=torch.long, device=idx.device) + past_len
        rope = None
        if self.wpe is None:
            rope = rotary_tables(positions, self.rope_cos, self.rope_sin)
            x = self.drop(self.wte(idx))  # (B, T, C)
        else:
            x = self.drop(self.wte(idx) + self.wpe(positions))
        present: list[KeyValue] = []
        yoke_hidden = None
        for i, block in enumerate(self.blocks):
            past = None if past_key_values is None else past_key_values[i]
            x, kv, hidden = block(x, past, yoke_state, rope)
            present.append(kv)
            if hidden is not None:
                yoke_hidden = hidden
        x = self.ln_f(x)
        logits = self.lm_head(x)  # (B, T, V)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), targets.reshape(-1))
        return logits, loss, present, yoke_hidden

    def empty_cache(self, batch_size: int = 1, device: torch.device | str = "cpu") -> list[KeyValue]:
        """A cache holding no positions, the first call's past in the exported graph."""
        c = self.config
        shape = (batch_size, c.n_head, 0, c.head_size)
        dtype = self.wte.weight.dtype
        return [
            (torch.zeros(shape, device=device, dtype=dtype), torch.zeros(shape, device=device, dtype=dtype))
            for _ in range(c.n_layer)
        ]


def gpt_from_checkpoint(payload: dict[str, Any]) -> tuple[GPT, Tokenizer]:
    """The GPT (on CPU, eval mode) and tokenizer stored in `payload` (see checkpoint.py); its
    sizes are bounded before anything is built (models/size_limits.py)."""
    require_kind(payload, "gpt")
    settings = check_setting_types(GPTConfig, payload.get("model_config"))
    with metadata_errors():
        config = GPTConfig.from_dict(settings)
        tokenizer = tokenizer_from_dict(payload["tokenizer"])
    if tokenizer.vocab_size != config.vocab_size:
        raise CheckpointError(
            f"checkpoint tokenizer has {tokenizer.vocab_size} tokens but the model expects "
            f"{config.vocab_size}"
        )
    check_counts(config, layers=("n_layer",), contexts=("block_size",))
    model = build_checked(lambda: GPT(config), payload["model"])
    model.eval()
    return model, tokenizer
