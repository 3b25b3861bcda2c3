"""`--log tensorboard` and `--log wandb`: the metrics log's figures, also written where the
tools people already use read them. Optional extras (`pip install textgen[log]`); each is
imported only when asked for, and a missing one is a one-line error before training starts.

Every record the metrics log appends (training/metrics_log.py) is mirrored: its numbers at its
`step` under `EVENT/KEY` (`train/loss`, `eval/val_loss`, `train/tokens_per_s`, ...), and the
`start` record's settings as the run's configuration. TensorBoard writes event files into
`<out stem>.tensorboard/` beside the checkpoint; Weights & Biases runs offline (no account, no
network: `wandb sync` uploads the folder later) into `<out stem>.wandb/`, unless WANDB_MODE is
set to something else.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from textgen_core.errors import ConfigError

LOGGERS = ("tensorboard", "wandb")


def mirror_folder(checkpoint: Path, kind: str) -> Path:
    """`models/gpt.tensorboard/` for `models/gpt.pt` (or its stem `models/gpt`)."""
    return checkpoint.with_name(f"{checkpoint.name.removesuffix('.pt')}.{kind}")


def scalars(record: dict[str, Any]) -> dict[str, float]:
    """The record's finite numbers (not its step) as `EVENT/KEY` names."""
    event = str(record.get("event", "log"))
    return {f"{event}/{key}": float(value) for key, value in record.items()
            if key != "step" and isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value)}


def settings(record: dict[str, Any]) -> dict[str, Any]:
    """A start record as flat configuration (`train_config.max_iters`, `summary.params`, ...)."""
    flat: dict[str, Any] = {}
    for key, value in record.items():
        if isinstance(value, dict):
            for inner, item in value.items():
                flat[f"{key}.{inner}"] = item if isinstance(item, (int, float, str, bool)) else str(item)
        elif key != "event":
            flat[key] = value if isinstance(value, (int, float, str, bool)) or value is None else str(value)
    return flat


class TensorBoardMirror:
    def __init__(self, checkpoint: Path, fresh: bool) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise ConfigError("--log tensorboard needs the tensorboard package: "
                              "pip install 'textgen[log]' (or pip install tensorboard)") from None
        self.folder = mirror_folder(checkpoint, "tensorboard")
        self.writer = SummaryWriter(str(self.folder))

    def write(self, record: dict[str, Any]) -> None:
        step = record.get("step", 0)
        if record.get("event") == "start":
            self.writer.add_text("start", json.dumps(settings(record), indent=1, default=str), 0)
        for name, value in scalars(record).items():
            self.writer.add_scalar(name, value, step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


class WandbMirror:
    def __init__(self, checkpoint: Path, fresh: bool) -> None:
        try:
            import wandb
        except ImportError:
            raise ConfigError("--log wandb needs the wandb package: pip install 'textgen[log]' "
                              "(or pip install wandb)") from None
        self.folder = mirror_folder(checkpoint, "wandb")
        self.folder.mkdir(parents=True, exist_ok=True)
        self.wandb = wandb
        self.run = wandb.init(project="textgen", name=checkpoint.name.removesuffix(".pt"),
                              dir=str(self.folder),
                              mode=os.environ.get("WANDB_MODE", "offline"),
                              resume="allow" if not fresh else None,
                              settings=wandb.Settings(silent=True, console="off"))

    def write(self, record: dict[str, Any]) -> None:
        if record.get("event") == "start":
            self.run.config.update(settings(record), allow_val_change=True)
        values = scalars(record)
        if values:
            self.run.log(values, step=record.get("step", 0))

    def close(self) -> None:
        self.run.finish()


def open_mirrors(kinds: tuple[str, ...], checkpoint: Path, fresh: bool) -> list[Any]:
    unknown = [k for k in kinds if k not in LOGGERS]
    if unknown:
        raise ConfigError(f"--log {unknown[0]!r} is unknown; choose from: {', '.join(LOGGERS)}")
    makers = {"tensorboard": TensorBoardMirror, "wandb": WandbMirror}
    return [makers[kind](checkpoint, fresh) for kind in dict.fromkeys(kinds)]
