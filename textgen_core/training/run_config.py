"""Assemble a run's settings: preset < config file < command-line flags, then resume/init rules."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from textgen_core.errors import ConfigError
from textgen_core.models.gpt import GPTConfig
from textgen_core.training.config import TrainConfig

MODEL_FIELDS = tuple(f.name for f in fields(GPTConfig) if f.name != "vocab_size")
TRAIN_FIELDS = tuple(f.name for f in fields(TrainConfig))
RUN_KEYS = ("preset", "corpus", "encoding", "out", "device", "compile", "model")


@dataclass
class Settings:
    """Values from one layer (config file or flags); None/missing means 'not given here'."""

    run: dict[str, Any]
    model: dict[str, Any]
    train: dict[str, Any]


def read_config_file(
    path: str,
    run_keys: tuple[str, ...] = RUN_KEYS,
    model_fields: tuple[str, ...] = MODEL_FIELDS,
    train_fields: tuple[str, ...] = TRAIN_FIELDS,
    family: str = "",
) -> Settings:
    """A --config TOML file: run keys and bare model/train settings at the top, or [model] and
    [train] tables. `family` ("GAN ") names the model family in the unknown-setting errors."""
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"--config file not found: {path}")
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"--config {path} is not valid TOML: {exc}") from None
    model = dict(data.pop("model", {}) if isinstance(data.get("model"), dict) else {})
    train = dict(data.pop("train", {}))
    run: dict[str, Any] = {}
    for key, value in data.items():
        if key in run_keys:
            run[key] = value
        elif key in model_fields:
            model[key] = value
        elif key in train_fields:
            train[key] = value
        else:
            raise ConfigError(f"--config {path}: unknown {family}setting {key!r}")
    for key in model:
        if key not in model_fields:
            raise ConfigError(f"--config {path}: unknown {family}model setting {key!r}")
    for key in train:
        if key not in train_fields:
            raise ConfigError(f"--config {path}: unknown {family}train setting {key!r}")
    return Settings(run, model, train)


def merge(*layers: dict[str, Any]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for layer in layers:
        merged.update({k: v for k, v in layer.items() if v is not None})
    return merged


def fit_warmup(train: dict[str, Any], explicit: dict[str, Any]) -> dict[str, Any]:
    """A short run from a preset keeps a warmup that fits: scale the preset's warmup down unless
    the user set it (then TrainConfig reports the conflict)."""
    if "warmup_iters" in explicit or "max_iters" not in train:
        return train
    if train.get("warmup_iters", 0) >= train["max_iters"]:
        train = {**train, "warmup_iters": train["max_iters"] // 10}
    return train


def fit_intervals(train: dict[str, Any], explicit: dict[str, Any]) -> dict[str, Any]:
    """Evaluate and save at least at the end of a run shorter than the preset's intervals."""
    for key in ("eval_interval", "checkpoint_interval"):
        if key not in explicit and "max_iters" in train and train.get(key, 1) > train["max_iters"]:
            train = {**train, key: train["max_iters"]}
    return train
