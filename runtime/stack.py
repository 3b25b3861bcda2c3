"""The layer stack in the runtime: its graph's layout and its sampler.

How a layer stack's exported graph is laid out, decided from its layer list alone.

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

Sample from an exported layer stack with numpy + onnxruntime.

The file is held to the same checks as a GPT file (runtime/onnx_file.py: structure scan,
external data and custom domains refused, textgen header, checksum, operators), with every size
of its config bounded (runtime/model_limits.py), then to the stack contract
above: `input_ids` [b, s] int64 and one float32 [b, H] input per RNN/LSTM
state part (`state.{i}.h`, `state.{i}.c`); outputs `logits` [b, s, V] and `next_state.{i}.*`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from runtime.contract import INPUT_IDS, LOGITS, state_input_name, state_output_name
from runtime.decode import decode_batch
from runtime.model_limits import LIMITS, activation_bytes, bounded_size, check_memory
from runtime.multi_sample import SequenceSampler
from runtime.onnx_file import FLOAT, INT64, Port, basic_session_options, check_io, fail, read_textgen_onnx
from runtime.sampler import SamplingSettings

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
    return [state_input_name(i, part) for i, kind, _ in state_layers(layers) for part in STATE_PARTS[kind]]


def state_output_names(layers: Sequence[dict[str, Any]]) -> list[str]:
    return [state_output_name(i, part) for i, kind, _ in state_layers(layers) for part in STATE_PARTS[kind]]


def graph_sequence_length(layers: Sequence[dict[str, Any]], block_size: int) -> int | None:
    """The static length of the graph's sequence axis, or None where it is dynamic."""
    if not state_layers(layers):
        return None
    return block_size if is_windowed(layers) else 1


def decode_window(windowed: bool, block_size: int, prompt_len: int, max_new_tokens: int) -> int:
    """The window the decoding loop slides: the model's for windowed stacks; for stepped ones a
    window that never fills, since the carried state already holds the whole history."""
    return block_size if windowed else prompt_len + max_new_tokens + 1


# the sizes a layer of runtime/stack.py's list may carry (textgen_core/models/stack/spec.py)
_LAYER_SIZES = ("vocab_size", "block_size", "n_embd", "n_head", "in_features", "out_features",
                "hidden_size", "ffn_factor")


def _layers(path: Path, config: dict[str, Any]) -> list[dict[str, Any]]:
    layers = config.get("layers")
    if not isinstance(layers, list) or not layers or not all(
            isinstance(layer, dict) and isinstance(layer.get("type"), str) for layer in layers):
        raise fail(path, "its stack config has no valid layer list")
    if len(layers) > LIMITS["layers"]:
        raise fail(path, f"its stack config has {len(layers):,} layers; this runtime accepts "
                         f"1 to {LIMITS['layers']:,}")
    for layer in layers:
        for key in _LAYER_SIZES:
            if key in layer or (key == "hidden_size" and layer["type"] in RECURRENT_TYPES):
                bounded_size(path, layer, key, f"stack config's {layer['type'][:40]!r} layer")
    return layers


def _memory(path: Path, config: dict[str, Any], layers: list[dict[str, Any]], block_size: int,
            vocab_size: int) -> None:
    """A windowed stack re-reads block_size positions through every layer."""
    width = sum(layer.get(key, 0) for layer in layers
                for key in ("n_embd", "hidden_size", "out_features"))
    heads = sum(layer.get("n_head", 0) for layer in layers)
    check_memory(path, activation_bytes(context=block_size, width=width, vocab=vocab_size,
                                        heads=heads))


class OnnxStack:
    """A checked stack ONNX model: logits and the next recurrent state for ids and a state."""

    def __init__(self, path: str | Path, threads: int | None = None, spin: bool | None = None) -> None:
        self.path = Path(path)
        checked = read_textgen_onnx(self.path, "stack", "not a layer stack")
        self.tokenizer, self.config = checked.tokenizer, checked.config
        checked.verify_checksum()
        self.block_size = bounded_size(self.path, self.config, "block_size", "stack config")
        self.vocab_size = bounded_size(self.path, self.config, "vocab_size", "stack config")
        if self.vocab_size != self.tokenizer.vocab_size:
            raise fail(self.path, f"the tokenizer has {self.tokenizer.vocab_size} tokens but the "
                                  f"model {self.vocab_size}")
        self.layers = _layers(self.path, self.config)
        _memory(self.path, self.config, self.layers, self.block_size, self.vocab_size)
        self.windowed = is_windowed(self.layers)
        self.sequence_length = graph_sequence_length(self.layers, self.block_size)
        self._state_names = state_input_names(self.layers)
        self._hidden = [h for _, kind, h in state_layers(self.layers)
                        for _ in range(2 if kind == "LSTM" else 1)]
        self.session = checked.session(basic_session_options(threads, spin))
        self._check_io()
        self._output_names = [LOGITS, *state_output_names(self.layers)]

    def _check_io(self) -> None:
        inputs = {INPUT_IDS: Port(INT64, 2, {1: self.sequence_length} if self.sequence_length else {},
                                    fixed=True)}
        outputs = {LOGITS: Port(FLOAT, 3, {2: self.vocab_size})}
        for name, out_name, hidden in zip(self._state_names, state_output_names(self.layers),
                                          self._hidden, strict=True):
            inputs[name] = Port(FLOAT, 2, {1: hidden})
            outputs[out_name] = Port(FLOAT, 2, {1: hidden})
        check_io(self.path, self.session, "textgen stack contract", inputs, outputs)

    def empty_state(self, batch_size: int = 1) -> list[np.ndarray]:
        return [np.zeros((batch_size, h), np.float32) for h in self._hidden]

    def forward(self, ids: np.ndarray, state: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
        """Logits (b, s, V) for `ids` (b, s) after `state`, and the state after the last id."""
        feed = {INPUT_IDS: np.ascontiguousarray(ids, dtype=np.int64)}
        feed.update(zip(self._state_names, state, strict=True))
        outputs = self.session.run(self._output_names, feed)
        return outputs[0], outputs[1:]


class StackGenerator(SequenceSampler):
    """`generate(prompt, ...)` for a stack file, with the same API and sampling as the GPT's
    `TextGenerator`."""

    def __init__(self, path: str | Path, threads: int | None = None,
                 model: OnnxStack | None = None, spin: bool | None = None) -> None:
        # `model`: an opened model with OnnxStack's interface (forward, empty_state, sizes) to
        # sample instead of opening `path`; export/stack.py passes a TorchScript one.
        self.model = OnnxStack(path, threads=threads, spin=spin) if model is None else model
        self.tokenizer = self.model.tokenizer
        self.block_size = self.model.block_size
        self.vocab_size = self.model.vocab_size
        # n_layer/n_embd keep the chat header meaningful: the stack's layer count and first width.
        self.config = {**self.model.config, "n_layer": len(self.model.layers) - 1,
                       "n_embd": self.model.layers[0].get("n_embd")}

    def _forward_window(self, windows: list[list[int]], past: list[list[int]] | None
                        ) -> tuple[np.ndarray, list[list[int]]]:
        """Windowed stacks: re-read each row's whole window (past ids + new ids) from zero state."""
        contexts = [[*p, *w] for p, w in zip(past or [[] for _ in windows], windows, strict=True)]
        ids = np.asarray(contexts, dtype=np.int64)
        length = ids.shape[1]
        if self.model.sequence_length:  # a fixed-length graph: pad on the right
            ids = np.pad(ids, ((0, 0), (0, self.model.sequence_length - length)))
        logits, _ = self.model.forward(ids, self.model.empty_state(len(contexts)))
        return logits[:, length - 1], contexts

    def _forward_step(self, windows: list[list[int]], state: list[np.ndarray]
                      ) -> tuple[np.ndarray, list[np.ndarray]]:
        """Stepped stacks: feed each id once, carrying the RNN/LSTM state."""
        ids = np.asarray(windows, dtype=np.int64)
        for column in range(ids.shape[1]):
            logits, state = self.model.forward(ids[:, column:column + 1], state)
        return logits[:, -1], state

    def token_batches(self, ids: list[int], settings: list[SamplingSettings],
                      seeds: list[int | None], max_new_tokens: int) -> Iterator[list[int]]:
        """One new token per sequence per step for len(settings) sequences continuing `ids`,
        one model call per step for all of them (runtime/decode.py `decode_batch`)."""
        windowed = self.model.windowed
        batch = len(settings)
        block = decode_window(windowed, self.block_size, len(ids), max_new_tokens)
        return decode_batch(ids, block_size=block,
                            forward=self._forward_window if windowed else self._forward_step,
                            empty_past=(lambda: None) if windowed
                            else (lambda: self.model.empty_state(batch)),
                            settings=settings, seeds=seeds, max_new_tokens=max_new_tokens)

