"""What a GPT or GAN run needs before it starts, whichever model family it trains
(`RunSpec[GPTConfig, TrainConfig]`, `RunSpec[GANConfig, GANTrainConfig]`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

from textgen_core.data.tokenizers import TokenizerSpec

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
