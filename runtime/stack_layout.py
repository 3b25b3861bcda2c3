"""How a layer stack's exported graph is laid out, decided from its layer list alone.

Shared by the exporter, the torch sampler and the runtime (plain Python: no torch, no numpy),
so all three read the context the same way:

- RNN/LSTM layer i has state inputs `state.{i}.h` (and `state.{i}.c` for an LSTM), (b, H), and
  outputs `next_state.{i}.h` / `.c`;
- a stack with position-dependent layers (PositionalEmbedding, attention, Block) is "windowed":
  sampling re-reads the current window (at most block_size tokens) every step from zero state,
  as in training;
- a stack without them is stepped: one token at a time, the RNN/LSTM state carried, with no
  window limit;
- the graph's sequence axis is dynamic unless the stack has RNN/LSTM layers, whose time loop
  is unrolled at export: then it is 1 for stepped stacks and block_size for windowed ones
  (shorter windows are padded on the right; causal layers make the padding invisible).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

RECURRENT_TYPES = ("RNN", "LSTM")
WINDOWED_TYPES = ("PositionalEmbedding", "MultiHeadSelfAttention", "Block")
STATE_PARTS = {"RNN": ("h",), "LSTM": ("h", "c")}


def is_windowed(layers: Sequence[dict[str, Any]]) -> bool:
    return any(layer.get("type") in WINDOWED_TYPES for layer in layers)


def state_layers(layers: Sequence[dict[str, Any]]) -> list[tuple[int, str, int]]:
    """(layer index, type, hidden size) of each RNN/LSTM layer, in order."""
    return [(i, layer["type"], int(layer["hidden_size"])) for i, layer in enumerate(layers)
            if layer.get("type") in RECURRENT_TYPES]


def state_input_names(layers: Sequence[dict[str, Any]]) -> list[str]:
    return [f"state.{i}.{part}" for i, kind, _ in state_layers(layers) for part in STATE_PARTS[kind]]


def state_output_names(layers: Sequence[dict[str, Any]]) -> list[str]:
    return ["next_" + name for name in state_input_names(layers)]


def graph_sequence_length(layers: Sequence[dict[str, Any]], block_size: int) -> int | None:
    """The static length of the graph's sequence axis, or None where it is dynamic."""
    if not state_layers(layers):
        return None
    return block_size if is_windowed(layers) else 1


def decode_window(windowed: bool, block_size: int, prompt_len: int, max_new_tokens: int) -> int:
    """The window the decoding loop slides: the model's for windowed stacks; for stepped ones a
    window that never fills, since the carried state already holds the whole history."""
    return block_size if windowed else prompt_len + max_new_tokens + 1
