import itertools
import math

import pytest

from textgen_core.errors import ConfigError
from textgen_core.training.config import TrainConfig, lr_at


def test_warmup_then_cosine_to_min_lr() -> None:
    cfg = TrainConfig(max_iters=100, warmup_iters=10, learning_rate=1.0, min_lr=0.1)
    assert lr_at(0, cfg) == pytest.approx(1 / 11)
    assert lr_at(9, cfg) == pytest.approx(10 / 11)
    assert lr_at(10, cfg) == pytest.approx(1.0)
    assert lr_at(55, cfg) == pytest.approx(0.55)
    assert lr_at(100, cfg) == pytest.approx(0.1)
    values = [lr_at(s, cfg) for s in range(10, 100)]
    assert all(a >= b for a, b in itertools.pairwise(values))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"max_iters": 0}, "--max-iters must be a positive integer"),
        ({"max_iters": -5}, "--max-iters must be a positive integer"),
        ({"batch_size": 0}, "--batch-size must be a positive integer"),
        ({"warmup_iters": 500, "max_iters": 200}, r"--warmup-iters \(500\) must be smaller than --max-iters \(200\)"),
        ({"learning_rate": math.nan}, "--learning-rate must be a finite number"),
        ({"min_lr": 1.0, "learning_rate": 0.1}, "--min-lr"),
        ({"beta2": 1.0}, "--beta2 must be in"),
        ({"eval_interval": 0}, "--eval-interval must be a positive integer"),
    ],
)
def test_impossible_values_name_the_flag(changes: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        TrainConfig(**changes)
