"""Training settings of the layer stack and its learning-rate rule (reduce on plateau).

The defaults follow the original from-scratch transformer: Adam betas (0.9, 0.99), decoupled L2
2e-4, patience 7 evaluations then lr x 0.9, gradient norm of RNN/LSTM layers clipped at 20.
"""

from __future__ import annotations

import math
from dataclasses import InitVar, asdict, dataclass, fields
from typing import Any

from textgen_core.errors import ConfigError
from textgen_core.training.flags import flag, require_int


@dataclass
class StackTrainConfig:
    batch_size: int = 16
    max_iters: int = 2000
    learning_rate: float = 1e-3
    min_lr: float = 1e-6  # the plateau rule never goes below this
    warmup_iters: int = 50  # linear warm-up; 0 turns it off
    lr_factor: float = 0.9  # lr multiplier when the validation loss stalls
    patience: int = 7  # evaluations without a new best before the lr drops
    weight_decay: float = 2e-4  # decoupled L2 on weight matrices (AdamW)
    beta1: float = 0.9
    beta2: float = 0.99
    grad_clip: float = 20.0  # gradient-norm limit for the RNN/LSTM layers' parameters; 0 = off
    eval_interval: int = 250
    eval_iters: int = 20
    checkpoint_interval: int = 250
    log_interval: int = 10
    sample_tokens: int = 200
    seed: int = 1337

    # False for a resumed run: the rules for planning a fresh run do not apply to one that
    # continues a saved schedule with a smaller --max-iters.
    fresh: InitVar[bool] = True

    def __post_init__(self, fresh: bool) -> None:
        for name in ("batch_size", "max_iters", "eval_interval", "eval_iters",
                     "checkpoint_interval", "log_interval"):
            require_int(name, getattr(self, name), minimum=1)
        for name in ("warmup_iters", "patience", "sample_tokens", "seed"):
            require_int(name, getattr(self, name), minimum=0)
        for name in ("learning_rate", "min_lr", "weight_decay", "grad_clip"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
                    math.isfinite(value) and value >= 0):
                raise ConfigError(f"{flag(name)} must be a finite number >= 0, got {value!r}")
        if self.learning_rate == 0:
            raise ConfigError("--learning-rate must be > 0")
        if self.min_lr > self.learning_rate:
            raise ConfigError(f"--min-lr ({self.min_lr}) must not exceed --learning-rate "
                              f"({self.learning_rate})")
        for name in ("beta1", "beta2"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
                raise ConfigError(f"{flag(name)} must be in [0, 1), got {value!r}")
        if isinstance(self.lr_factor, bool) or not isinstance(self.lr_factor, (int, float)) or not (
                0 < self.lr_factor <= 1):
            raise ConfigError(f"--lr-factor must be in (0, 1], got {self.lr_factor!r}")
        if fresh and self.warmup_iters >= self.max_iters:
            raise ConfigError(f"--warmup-iters ({self.warmup_iters}) must be smaller than "
                              f"--max-iters ({self.max_iters})")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "[train]",
                  fresh: bool = True) -> StackTrainConfig:
        unknown = set(data) - {f.name for f in fields(cls)}
        if unknown:
            raise ConfigError(f"{source}: unknown training setting(s): {', '.join(sorted(unknown))}; "
                              f"choose from: {', '.join(f.name for f in fields(cls))}")
        return cls(**data, fresh=fresh)


@dataclass
class Plateau:
    """Reduce-on-plateau state, plain values so a checkpoint restores it exactly.

    After more than `patience` evaluations without a new best validation loss, the learning rate
    is multiplied by `lr_factor` (not below `min_lr`) and the count starts again.
    """

    lr: float
    best: float = math.inf
    bad_evals: int = 0
    reductions: int = 0

    def update(self, val_loss: float, cfg: StackTrainConfig) -> bool:
        """Record one evaluation; True when it lowered the learning rate."""
        if val_loss < self.best:
            self.best, self.bad_evals = val_loss, 0
            return False
        self.bad_evals += 1
        if self.bad_evals <= cfg.patience:
            return False
        self.lr = max(cfg.min_lr, self.lr * cfg.lr_factor)
        self.bad_evals = 0
        self.reductions += 1
        return True

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def lr_for_step(step: int, plateau: Plateau, cfg: StackTrainConfig) -> float:
    """Linear warm-up to the plateau rule's current rate, then that rate."""
    if step < cfg.warmup_iters:
        return plateau.lr * (step + 1) / cfg.warmup_iters
    return plateau.lr
