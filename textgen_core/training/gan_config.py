"""Training settings of the text GAN, validated where they are made."""

from __future__ import annotations

import math
from dataclasses import InitVar, asdict, dataclass, fields
from typing import Any

from textgen_core.errors import ConfigError


@dataclass
class GANTrainConfig:
    batch_size: int = 32
    # Generator updates in all: the first `mle_iters` are the MLE warm-up, the rest adversarial.
    # The default is the best measured recipe (docs/gan.md, "Measured"): a long warm-up, then a short
    # adversarial phase; longer adversarial phases shortened the sentences and raised judge NLL.
    max_iters: int = 760
    mle_iters: int = 700
    critic_steps: int = 3
    learning_rate: float = 1e-4  # generator, adversarial phase
    mle_learning_rate: float = 1e-3  # generator, warm-up
    d_learning_rate: float = 1e-4
    beta1: float = 0.5
    beta2: float = 0.9
    gp_weight: float = 10.0
    # Weight of the teacher-forced MLE loss kept in the generator's loss after the warm-up
    # (0 = a pure adversarial phase, the seed's). 1 measured best on the quality/diversity curve
    # (docs/gan.md): with it the adversarial phase's curve lies above its warm-up's, with either
    # critic input; without it, below.
    mle_weight: float = 1.0
    # --critic-input gumbel: the inverse temperature of the relaxation rises from 1 at the start
    # of the adversarial phase to gumbel_max_beta after gumbel_anneal_steps adversarial steps,
    # exponentially (RelGAN's annealing), then stays there. Counted in steps from the start of
    # the phase, so stopping and resuming (a new --max-iters) does not change it.
    gumbel_max_beta: float = 100.0
    gumbel_anneal_steps: int = 300
    grad_clip: float = 1.0
    eval_interval: int = 50
    checkpoint_interval: int = 100
    log_interval: int = 10
    seed: int = 1337

    # False for a resumed run: the rules for planning a fresh run do not apply to one that
    # continues a saved schedule with a smaller --max-iters.
    fresh: InitVar[bool] = True

    def __post_init__(self, fresh: bool) -> None:
        for name in ("batch_size", "max_iters", "critic_steps", "eval_interval",
                     "checkpoint_interval", "log_interval", "gumbel_anneal_steps"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ConfigError(f"--{name.replace('_', '-')} must be a positive integer, got {value!r}")
        if not isinstance(self.mle_iters, int) or self.mle_iters < 0:
            raise ConfigError(f"--mle-iters must be >= 0, got {self.mle_iters!r}")
        if fresh and self.mle_iters > self.max_iters:
            raise ConfigError(f"--mle-iters ({self.mle_iters}) must not exceed --max-iters "
                              f"({self.max_iters})")
        for name in ("learning_rate", "mle_learning_rate", "d_learning_rate"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                raise ConfigError(f"--{name.replace('_', '-')} must be a positive number, got {value!r}")
        for name in ("beta1", "beta2"):
            if not 0 <= getattr(self, name) < 1:
                raise ConfigError(f"--{name} must be in [0, 1), got {getattr(self, name)!r}")
        for name in ("gp_weight", "mle_weight", "grad_clip"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ConfigError(f"--{name.replace('_', '-')} must be a finite number >= 0, got {value!r}")
        beta = self.gumbel_max_beta
        if not isinstance(beta, (int, float)) or not math.isfinite(beta) or beta < 1:
            raise ConfigError(f"--gumbel-max-beta must be a finite number >= 1, got {beta!r}")
        if not isinstance(self.seed, int):
            raise ConfigError(f"--seed must be an integer, got {self.seed!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], fresh: bool = True) -> GANTrainConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known}, fresh=fresh)
