"""Assemble a run's settings, for every family: preset < config file < command-line flags.

What a run needs before it starts, whichever model family it trains
(`RunSpec[GPTConfig, TrainConfig]`, `RunSpec[GANConfig, GANTrainConfig]`,
`RunSpec[StackModelRequest | None, StackTrainConfig]`).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Generic, TypeVar

from runtime.regular_file import CONFIG_LIMIT, read_regular_text
from textgen_core.data.tokenizers import TokenizerSpec
from textgen_core.errors import CheckpointError, ConfigError
from textgen_core.models.gpt import GPTConfig
from textgen_core.training.config import TrainConfig

MODEL_FIELDS = tuple(f.name for f in fields(GPTConfig) if f.name != "vocab_size")
TRAIN_FIELDS = tuple(f.name for f in fields(TrainConfig))
RUN_KEYS = ("preset", "corpus", "encoding", "out", "device", "compile", "model", "gutenberg_mirror",
            "max_books", "time_budget")
NUMBER_RUN_KEYS = ("max_books", "time_budget")  # the rest are strings


@dataclass
class Settings:
    """Values from one layer (config file or flags); None/missing means 'not given here'."""

    run: dict[str, Any]
    model: dict[str, Any]
    train: dict[str, Any]


@dataclass
class RunRequest:
    """What one `train` command asks for, whichever family it trains: the run keys, model and
    training settings (each the config file's values under the flags'), and the run's mode."""

    family: str
    run: dict[str, Any]
    model: dict[str, Any]
    train: dict[str, Any]
    resume: bool = False
    init_from: str | None = None
    overwrite: bool = False
    loaded: dict[str, dict[str, Any]] = field(default_factory=dict)  # checkpoints read so far

    def checkpoint(self, path: str | Path, kind: str | None = None) -> dict[str, Any]:
        """The checkpoint at `path`, read once however often the setup asks for it."""
        from textgen_core.training.checkpoint import load_checkpoint

        key = str(path)
        if key not in self.loaded:
            self.loaded[key] = load_checkpoint(path)
        payload = self.loaded[key]
        if kind is not None and payload["kind"] != kind:
            raise CheckpointError(f"{path} holds a {payload['kind']!r} model, but this command needs "
                                  f"a {kind!r} model")
        return payload


def read_toml(path: str) -> dict[str, Any]:
    """The --config file, read once."""
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"--config file not found: {path}")
    try:
        return tomllib.loads(read_regular_text(file, CONFIG_LIMIT))
    except OSError as exc:
        raise ConfigError(f"--config {path}: cannot read it ({exc.strerror or exc})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise ConfigError(f"--config {path} is not valid TOML: {exc}") from None


def split_settings(
    data: dict[str, Any], path: str, run_keys: tuple[str, ...], field_types: dict[str, dict[str, type]],
) -> Settings:
    """A --config file's values as run keys and model/train settings: bare keys at the top, or
    [model] and [train] tables. `field_types` gives each setting's type for "model" and "train";
    a value of another type (`beta1 = "0.5"`) is refused here, naming the key."""
    data = dict(data)
    model = dict(data.pop("model", {}) if isinstance(data.get("model"), dict) else {})
    train = data.pop("train", {})
    if not isinstance(train, dict):
        raise ConfigError(f"--config {path}: [train] must be a table")
    train = dict(train)
    run: dict[str, Any] = {}
    for key, value in data.items():
        if key in run_keys:
            run[key] = value
        elif key in field_types["model"]:
            model[key] = value
        elif key in field_types["train"]:
            train[key] = value
        else:
            raise ConfigError(f"--config {path}: unknown setting {key!r}")
    for part, values in (("model", model), ("train", train)):
        for key, value in values.items():
            if key not in field_types[part]:
                raise ConfigError(f"--config {path}: unknown {part} setting {key!r}")
            _check_type(path, key, value, field_types[part][key])
    for key, value in run.items():
        if key not in NUMBER_RUN_KEYS and not isinstance(value, str):
            raise ConfigError(f"--config {path}: {key} must be a string, got {value!r}")
    return Settings(run, model, train)


def _check_type(path: str, key: str, value: Any, kind: type) -> None:
    if kind is float:
        fits = isinstance(value, (int, float)) and not isinstance(value, bool)
    elif kind is int:
        fits = isinstance(value, int) and not isinstance(value, bool)
    else:
        fits = isinstance(value, kind)
    if not fits:
        names = {float: "a number", int: "an integer", bool: "true or false", str: "a string"}
        raise ConfigError(f"--config {path}: {key} must be {names.get(kind, kind.__name__)}, "
                          f"got {value!r}")


def field_types(*dataclasses: type, skip: tuple[str, ...] = ()) -> dict[str, type]:
    """Each dataclass field's type, read from its default value (configs have no None fields)."""
    types: dict[str, type] = {}
    for cls in dataclasses:
        defaults = cls()
        for f in fields(cls):
            if f.name not in skip:
                default = getattr(defaults, f.name)
                types.setdefault(f.name, str if default is None else type(default))
    return types


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


ModelConfigT = TypeVar("ModelConfigT")
TrainConfigT = TypeVar("TrainConfigT")


@dataclass
class RunSpec(Generic[ModelConfigT, TrainConfigT]):
    """Everything a run needs; `resume_from`/`init_from` are loaded checkpoint dicts."""

    model_config: ModelConfigT
    train_config: TrainConfigT
    corpus: str
    out: Path
    encoding: str | None = None
    device: str = "auto"
    compile: str = "auto"
    resume_from: dict[str, Any] | None = None
    init_from: dict[str, Any] | None = None
    init_from_path: str | None = None
    tokenizer: TokenizerSpec = field(default_factory=TokenizerSpec)  # a fresh run's
    log: tuple[str, ...] = ()  # --log: tensorboard, wandb (training/log_mirrors.py)
    time_budget: float | None = None  # --time-budget, minutes (training/time_budget.py)
    max_iters_given: bool = False  # --max-iters given: it caps a budgeted run
