"""The layer list of a stack: reading `[[layers]]` tables from TOML, filling in sizes, validating.

A layers file::

    [model]                      # optional: model-level defaults (flags override them)
    block_size = 128
    n_embd = 128

    [train]                      # optional: training settings (flags override them)
    learning_rate = 1e-3

    [[layers]]
    type = "Embedding"           # vocab_size and n_embd default from the corpus and --n-embd
    [[layers]]
    type = "LSTM"
    [[layers]]
    type = "TemporalDense"       # out_features defaults to the vocabulary before CrossEntropyLoss
    [[layers]]
    type = "CrossEntropyLoss"

Every missing size is filled in from the model-level settings or the previous layer's output, so
a resolved spec is explicit and is what a checkpoint stores.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from runtime.regular_file import CONFIG_LIMIT, read_regular_text
from runtime.stack import RECURRENT_TYPES, is_windowed
from textgen_core.errors import ConfigError

PARAMS: dict[str, tuple[str, ...]] = {
    "Embedding": ("vocab_size", "n_embd"),
    "PositionalEmbedding": ("block_size", "n_embd"),
    "TemporalDense": ("in_features", "out_features"),
    "MultiHeadSelfAttention": ("n_embd", "n_head"),
    "Block": ("n_embd", "n_head", "dropout", "ffn_factor", "eps"),
    "LayerNorm": ("n_embd", "eps"),
    "Dropout": ("p",),
    "RNN": ("in_features", "hidden_size"),
    "LSTM": ("in_features", "hidden_size"),
    "CrossEntropyLoss": ("vocab_size",),
}
LAYER_TYPES = tuple(PARAMS)
# The parameter that must equal the previous layer's output size, and the one giving this
# layer's output size (Dropout passes its input size through).
_INPUT = {"PositionalEmbedding": "n_embd", "TemporalDense": "in_features",
          "MultiHeadSelfAttention": "n_embd", "Block": "n_embd", "LayerNorm": "n_embd",
          "RNN": "in_features", "LSTM": "in_features", "CrossEntropyLoss": "vocab_size"}
_OUTPUT = {"Embedding": "n_embd", "PositionalEmbedding": "n_embd", "TemporalDense": "out_features",
           "MultiHeadSelfAttention": "n_embd", "Block": "n_embd", "LayerNorm": "n_embd",
           "RNN": "hidden_size", "LSTM": "hidden_size", "CrossEntropyLoss": "vocab_size"}
_FRACTIONS = ("dropout", "p")
MODEL_SETTINGS = ("block_size", "n_embd", "n_head", "dropout")


@dataclass
class StackConfig:
    """Model-level settings and the resolved layer list (every parameter filled in)."""

    vocab_size: int
    block_size: int = 128
    n_embd: int = 128
    n_head: int = 4
    dropout: float = 0.0
    layers: list[dict[str, Any]] = field(default_factory=list)
    source: str = "--layers"

    def __post_init__(self) -> None:
        for name in ("vocab_size", "block_size", "n_embd", "n_head"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ConfigError(f"--{name.replace('_', '-')} must be a positive integer, got {value!r}")
        if not isinstance(self.dropout, (int, float)) or not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"--dropout must be in [0, 1), got {self.dropout!r}")
        self.layers = resolve_layers(self.layers, self)

    @property
    def recurrent(self) -> bool:
        return any(s["type"] in RECURRENT_TYPES for s in self.layers)

    @property
    def windowed(self) -> bool:
        """Sampling re-reads a window rather than stepping a state (runtime/stack.py)."""
        return is_windowed(self.layers)

    def recurrent_layers(self) -> list[tuple[int, str]]:
        """(layer index, type) of each RNN/LSTM layer, in order: the names of its state."""
        return [(i, s["type"]) for i, s in enumerate(self.layers) if s["type"] in RECURRENT_TYPES]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("source")
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "checkpoint") -> StackConfig:
        known = {"vocab_size", *MODEL_SETTINGS, "layers"}
        unknown = set(data) - known
        if unknown:
            raise ConfigError(f"unknown stack config field(s): {', '.join(sorted(unknown))}")
        return cls(**data, source=source)


def _where(source: str, n: int, kind: str | None = None) -> str:
    return f"{source}: layer {n}" + (f" ({kind})" if kind else "")


def resolve_layers(raw_layers: Any, cfg: StackConfig) -> list[dict[str, Any]]:
    src = cfg.source
    if not isinstance(raw_layers, list) or not raw_layers:
        raise ConfigError(f"{src}: no [[layers]] tables; a stack needs at least an Embedding "
                          "and a CrossEntropyLoss layer")
    resolved: list[dict[str, Any]] = []
    prev_out, prev_name = 0, ""
    count = len(raw_layers)
    for n, raw in enumerate(raw_layers, start=1):
        if not isinstance(raw, dict):
            raise ConfigError(f"{_where(src, n)} is not a table")
        kind = raw.get("type")
        if kind is None:
            raise ConfigError(f"{_where(src, n)} has no 'type'; choose from: {', '.join(LAYER_TYPES)}")
        if kind not in PARAMS:
            raise ConfigError(f"{_where(src, n)}: unknown type {kind!r}; choose from: "
                              f"{', '.join(LAYER_TYPES)}")
        unknown = sorted(set(raw) - {"type"} - set(PARAMS[kind]))
        if unknown:
            raise ConfigError(f"{_where(src, n, kind)}: unknown parameter(s) "
                              f"{', '.join(repr(u) for u in unknown)}; {kind} takes: "
                              f"{', '.join(PARAMS[kind]) or 'none'}")
        if n == 1 and kind != "Embedding":
            raise ConfigError(f"{src}: the first layer must be Embedding, got {kind}")
        if n > 1 and kind == "Embedding":
            raise ConfigError(f"{_where(src, n)}: Embedding may only be the first layer")
        if n == count and kind != "CrossEntropyLoss":
            raise ConfigError(f"{src}: the last layer must be CrossEntropyLoss, got {kind}")
        if n < count and kind == "CrossEntropyLoss":
            raise ConfigError(f"{_where(src, n)}: CrossEntropyLoss may only be the last layer")
        next_kind = raw_layers[n].get("type") if n < count and isinstance(raw_layers[n], dict) else None
        defaults = {
            "vocab_size": cfg.vocab_size,
            "n_embd": prev_out if prev_out else cfg.n_embd,
            "block_size": cfg.block_size,
            "in_features": prev_out,
            "out_features": cfg.vocab_size if next_kind == "CrossEntropyLoss" else cfg.n_embd,
            "n_head": cfg.n_head,
            "dropout": cfg.dropout,
            "p": cfg.dropout,
            "ffn_factor": 4,
            "eps": 1e-5,
            "hidden_size": cfg.n_embd,
        }
        spec = {"type": kind, **{k: raw.get(k, defaults[k]) for k in PARAMS[kind]}}
        _check_values(spec, _where(src, n, kind))
        _check_fit(spec, cfg, _where(src, n, kind), prev_out, prev_name, n)
        resolved.append(spec)
        if kind != "Dropout":
            prev_out = spec[_OUTPUT[kind]]
        prev_name = f"layer {n} ({kind})"
    return resolved


def _check_values(spec: dict[str, Any], where: str) -> None:
    for key, value in spec.items():
        if key == "type":
            continue
        if key in _FRACTIONS:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
                raise ConfigError(f"{where}: {key} must be a number in [0, 1), got {value!r}")
        elif key == "eps":
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
                    math.isfinite(value) and value > 0):
                raise ConfigError(f"{where}: eps must be a finite number > 0, got {value!r}")
        elif isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ConfigError(f"{where}: {key} must be a positive integer, got {value!r}")


def _check_fit(spec: dict[str, Any], cfg: StackConfig, where: str, prev_out: int, prev_name: str,
               n: int) -> None:
    kind = spec["type"]
    if kind in ("Embedding", "CrossEntropyLoss") and spec["vocab_size"] != cfg.vocab_size:
        raise ConfigError(f"{where}: vocab_size {spec['vocab_size']} does not match the "
                          f"vocabulary of {cfg.vocab_size} tokens (leave it out to use the vocabulary's)")
    if kind == "CrossEntropyLoss" and prev_out != cfg.vocab_size:
        raise ConfigError(f"{where}: needs {cfg.vocab_size} logits (the vocabulary), but {prev_name} "
                          f"outputs {prev_out}; put a TemporalDense before it")
    param = _INPUT.get(kind)
    if param is not None and spec[param] != prev_out:
        raise ConfigError(f"{where}: {param} {spec[param]} does not match the output size "
                          f"{prev_out} of {prev_name}; sizes must chain")
    if kind in ("MultiHeadSelfAttention", "Block") and spec["n_embd"] % spec["n_head"]:
        raise ConfigError(f"{where}: n_embd ({spec['n_embd']}) must be divisible by "
                          f"n_head ({spec['n_head']})")
    if kind == "PositionalEmbedding" and spec["block_size"] < cfg.block_size:
        raise ConfigError(f"{where}: block_size {spec['block_size']} is smaller than the "
                          f"model's --block-size {cfg.block_size}")


@dataclass
class LayersFile:
    layers: list[dict[str, Any]]
    model: dict[str, Any]
    train: dict[str, Any]
    source: str


def read_layers_file(path: str | Path) -> LayersFile:
    """Parse a layers file; sizes are resolved later, once the vocabulary is known."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"--layers: no such file: {path}")
    try:
        data = tomllib.loads(read_regular_text(path, CONFIG_LIMIT))
    except OSError as exc:
        raise ConfigError(f"--layers: cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"--layers: cannot read {path}: {exc}") from None
    except (tomllib.TOMLDecodeError, RecursionError) as exc:
        raise ConfigError(f"--layers: {path} is not valid TOML: {exc}") from None
    unknown = sorted(set(data) - {"layers", "model", "train"})
    if unknown:
        raise ConfigError(f"{path}: unknown top-level key(s) {', '.join(unknown)}; a layers file "
                          "holds [[layers]] tables and optional [model] and [train] tables")
    model = data.get("model", {})
    train = data.get("train", {})
    if not isinstance(model, dict) or not isinstance(train, dict):
        raise ConfigError(f"{path}: [model] and [train] must be tables")
    bad = sorted(set(model) - set(MODEL_SETTINGS))
    if bad:
        raise ConfigError(f"{path}: unknown [model] setting(s) {', '.join(bad)}; "
                          f"choose from: {', '.join(MODEL_SETTINGS)}")
    return LayersFile(layers=data.get("layers", []), model=model, train=train, source=str(path))
