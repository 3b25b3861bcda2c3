"""Training settings as a validated dataclass (model shape lives in `GPTConfig`)."""

from __future__ import annotations

import math
from dataclasses import InitVar, asdict, dataclass, fields
from typing import Any

from textgen_core.errors import ConfigError
from textgen_core.training.flags import flag, require_int

DEVICES = ("auto", "cpu", "cuda", "mps")
COMPILE_MODES = ("auto", "on", "off")
OPTIMIZERS = ("adamw", "muon")
MAX_BATCH = 1 << 16  # sequences per step; what one step allocates grows with it before any check could
DTYPE_CHOICES = ("auto", "fp32", "bf16")


@dataclass
class TrainConfig:
    batch_size: int = 32
    gradient_accumulation_steps: int = 1
    max_iters: int = 2000
    learning_rate: float = 2e-3
    min_lr: float = 2e-4
    warmup_iters: int = 100
    lr_decay_iters: int = 0  # 0: decay until max_iters
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.99
    grad_clip: float = 1.0
    eval_interval: int = 250
    eval_iters: int = 20
    checkpoint_interval: int = 250
    log_interval: int = 10
    sample_tokens: int = 200
    seed: int = 1337
    # Stateful yoke only: consecutive windows per stream before the streams restart (truncated
    # backpropagation through time; textgen_core/data/streams.py).
    yoke_windows: int = 4
    # "adamw", or "muon": Muon on the hidden matrices at muon_lr, AdamW on the rest
    # (textgen_core/training/muon.py).
    optimizer: str = "adamw"
    muon_lr: float = 0.02
    # What a training step computes in: "auto" measures fp32 against bf16 on a CPU (the device's
    # rule elsewhere) and records the choice (textgen_core/training/dtype_choice.py).
    dtype: str = "auto"
    # False for a resumed run: the rules meant for planning a fresh run (warmup shorter than the
    # run) do not apply to one that continues a saved schedule.
    fresh: InitVar[bool] = True

    def __post_init__(self, fresh: bool) -> None:
        if self.dtype not in DTYPE_CHOICES:
            raise ConfigError(f"--dtype must be one of {', '.join(DTYPE_CHOICES)}, "
                              f"got {str(self.dtype)[:40]!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"--optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}")
        for name in (
            "gradient_accumulation_steps", "max_iters", "eval_interval",
            "eval_iters", "checkpoint_interval", "log_interval", "yoke_windows",
        ):
            require_int(name, getattr(self, name), minimum=1)
        require_int("batch_size", self.batch_size, minimum=1, maximum=MAX_BATCH)
        for name in ("warmup_iters", "lr_decay_iters", "sample_tokens", "seed"):
            require_int(name, getattr(self, name), minimum=0)
        for name in ("learning_rate", "min_lr", "weight_decay", "grad_clip", "muon_lr"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ConfigError(f"{flag(name)} must be a finite number >= 0, got {value!r}")
        if self.learning_rate == 0:
            raise ConfigError("--learning-rate must be > 0")
        if self.min_lr > self.learning_rate:
            raise ConfigError(
                f"--min-lr ({self.min_lr}) must not exceed --learning-rate ({self.learning_rate})"
            )
        for name in ("beta1", "beta2"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
                raise ConfigError(f"{flag(name)} must be in [0, 1), got {value!r}")
        if fresh and self.warmup_iters >= self.max_iters:
            raise ConfigError(
                f"--warmup-iters ({self.warmup_iters}) must be smaller than --max-iters "
                f"({self.max_iters})"
            )

    @classmethod
    def resumed(cls, saved: dict[str, Any], overrides: dict[str, Any]) -> TrainConfig:
        """The settings of a resumed run: the saved ones, with `overrides` (the flags and config
        file) on top. The saved learning-rate schedule continues unchanged: its decay length is
        pinned to the saved one unless --lr-decay-iters is given, so a new --max-iters only moves
        where the run stops (past the saved decay, the rate stays at --min-lr, as in nanoGPT)."""
        merged = {**saved, **overrides}
        if "lr_decay_iters" not in overrides and "max_iters" in overrides:
            merged["lr_decay_iters"] = saved.get("lr_decay_iters") or saved.get("max_iters", 0)
        return cls(**merged, fresh=False)

    @property
    def decay_iters(self) -> int:
        return self.lr_decay_iters or self.max_iters

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ConfigError(f"unknown training setting(s): {', '.join(sorted(unknown))}")
        return cls(**data)


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Learning-rate schedule: linear warmup, then cosine decay to `min_lr` (as in nanoGPT)."""
    if step < cfg.warmup_iters:
        return cfg.learning_rate * (step + 1) / (cfg.warmup_iters + 1)
    if step >= cfg.decay_iters:
        return cfg.min_lr
    progress = (step - cfg.warmup_iters) / max(1, cfg.decay_iters - cfg.warmup_iters)
    coeff = 0.5 * (1.0 + math.cos(math.pi * progress))
    return cfg.min_lr + coeff * (cfg.learning_rate - cfg.min_lr)
