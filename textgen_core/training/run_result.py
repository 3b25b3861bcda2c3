"""What a GPT or stack training run reports back to its command line."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class RunResult:
    step: int
    val_loss: float
    best_val_loss: float
    tokens_per_s: float
    train_seconds: float
    interrupted: bool = False
    losses: list[float] = field(default_factory=list)
    is_main: bool = True  # False on the non-zero ranks of a distributed run
