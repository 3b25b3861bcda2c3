"""A layer stack's TorchScript file (export/stack_torchscript.py), sampled by the ONNX runtime's
own `StackGenerator`: `TorchScriptStack` offers `OnnxStack`'s interface (`forward(ids, state)`,
`empty_state`, the sizes and the layout of runtime/stack_layout.py), so windows, padding, the
carried RNN/LSTM state and the choice of each token are the runtime's code, and the same seed
gives the same text from either file.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from export.torchscript_file import TorchScriptFile
from runtime.errors import ModelFileError
from runtime.model_limits import bounded_size
from runtime.stack_layout import (
    RECURRENT_TYPES,
    STATE_PARTS,
    graph_sequence_length,
    is_windowed,
    state_layers,
)
from runtime.stack_model import StackGenerator


def _layers(loaded: TorchScriptFile) -> list[dict[str, Any]]:
    layers = loaded.config.get("layers")
    if not isinstance(layers, list) or not layers or not all(
            isinstance(layer, dict) and isinstance(layer.get("type"), str) for layer in layers):
        raise ModelFileError(f"{loaded.path}: its stack config has no valid layer list")
    for layer in layers:
        if layer["type"] in RECURRENT_TYPES:
            bounded_size(loaded.path, layer, "hidden_size", f"stack config's {layer['type']} layer")
    return layers


class TorchScriptStack:
    """A trusted stack TorchScript file: logits and the next recurrent state for ids and a state."""

    def __init__(self, loaded: TorchScriptFile) -> None:
        self.path = loaded.path
        self.module = loaded.module
        self.tokenizer, self.config = loaded.tokenizer, loaded.config
        self.block_size = bounded_size(self.path, self.config, "block_size", "stack config")
        self.vocab_size = bounded_size(self.path, self.config, "vocab_size", "stack config")
        if self.vocab_size != self.tokenizer.vocab_size:
            raise ModelFileError(f"{self.path}: the tokenizer has {self.tokenizer.vocab_size} tokens "
                                 f"but the model {self.vocab_size}")
        self.layers = _layers(loaded)
        self.windowed = is_windowed(self.layers)
        self.sequence_length = graph_sequence_length(self.layers, self.block_size)
        self._hidden = [h for _, kind, h in state_layers(self.layers) for _ in STATE_PARTS[kind]]

    def empty_state(self, batch_size: int = 1) -> list[np.ndarray]:
        return [np.zeros((batch_size, h), np.float32) for h in self._hidden]

    def forward(self, ids: np.ndarray, state: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
        """Logits (b, s, V) for `ids` (b, s) after `state`, and the state after the last id."""
        inputs = [torch.from_numpy(np.ascontiguousarray(ids, dtype=np.int64)),
                  *(torch.from_numpy(np.ascontiguousarray(s, dtype=np.float32)) for s in state)]
        with torch.inference_mode():
            outputs = self.module(*inputs)
        logits, *next_state = (outputs,) if isinstance(outputs, torch.Tensor) else outputs
        return logits.float().numpy(), [s.float().numpy() for s in next_state]


def torchscript_stack_generator(loaded: TorchScriptFile) -> StackGenerator:
    """The runtime's stack generator, sampling the TorchScript stack."""
    return StackGenerator(loaded.path, model=TorchScriptStack(loaded))  # type: ignore[arg-type]
