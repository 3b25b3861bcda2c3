"""Sample from an exported layer stack with numpy + onnxruntime.

The file is held to the same checks as a GPT file (runtime/onnx_file.py: structure scan,
external data and custom domains refused, textgen header, checksum), then to the stack contract
of runtime/stack_layout.py: `input_ids` [b, s] int64 and one float32 [b, H] input per RNN/LSTM
state part (`state.{i}.h`, `state.{i}.c`); outputs `logits` [b, s, V] and `next_state.{i}.*`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from runtime.decode import decode
from runtime.generator import start_ids
from runtime.onnx_file import FLOAT, INT64, Port, basic_session_options, check_io, fail, read_textgen_onnx
from runtime.sampler import SamplingSettings, validate_max_new_tokens
from runtime.stack_layout import (
    decode_window,
    graph_sequence_length,
    is_windowed,
    state_input_names,
    state_layers,
    state_output_names,
)


def _positive(path: Path, config: dict[str, Any], key: str) -> int:
    value = config.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise fail(path, f"its stack config lacks a valid {key!r}")
    return value


def _layers(path: Path, config: dict[str, Any]) -> list[dict[str, Any]]:
    layers = config.get("layers")
    if not isinstance(layers, list) or not layers or not all(
            isinstance(layer, dict) and isinstance(layer.get("type"), str) for layer in layers):
        raise fail(path, "its stack config has no valid layer list")
    try:
        state_layers(layers)
    except (KeyError, TypeError, ValueError):
        raise fail(path, "its stack config has an RNN/LSTM layer without a valid hidden_size") from None
    return layers


class OnnxStack:
    """A checked stack ONNX model: logits and the next recurrent state for ids and a state."""

    def __init__(self, path: str | Path, threads: int | None = None) -> None:
        self.path = Path(path)
        checked = read_textgen_onnx(self.path, "stack", "not a layer stack")
        self.tokenizer, self.config = checked.tokenizer, checked.config
        checked.verify_checksum()
        self.block_size = _positive(self.path, self.config, "block_size")
        self.vocab_size = _positive(self.path, self.config, "vocab_size")
        if self.vocab_size != self.tokenizer.vocab_size:
            raise fail(self.path, f"the tokenizer has {self.tokenizer.vocab_size} tokens but the "
                                  f"model {self.vocab_size}")
        self.layers = _layers(self.path, self.config)
        self.windowed = is_windowed(self.layers)
        self.sequence_length = graph_sequence_length(self.layers, self.block_size)
        self._state_names = state_input_names(self.layers)
        self._hidden = [h for _, kind, h in state_layers(self.layers)
                        for _ in range(2 if kind == "LSTM" else 1)]
        self.session = checked.session(basic_session_options(threads))
        self._check_io()
        self._output_names = ["logits", *state_output_names(self.layers)]

    def _check_io(self) -> None:
        inputs = {"input_ids": Port(INT64, 2, {1: self.sequence_length} if self.sequence_length else {},
                                    fixed=True)}
        outputs = {"logits": Port(FLOAT, 3, {2: self.vocab_size})}
        for name, out_name, hidden in zip(self._state_names, state_output_names(self.layers),
                                          self._hidden, strict=True):
            inputs[name] = Port(FLOAT, 2, {1: hidden})
            outputs[out_name] = Port(FLOAT, 2, {1: hidden})
        check_io(self.path, self.session, "textgen stack contract", inputs, outputs)

    def empty_state(self, batch_size: int = 1) -> list[np.ndarray]:
        return [np.zeros((batch_size, h), np.float32) for h in self._hidden]

    def forward(self, ids: np.ndarray, state: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
        """Logits (b, s, V) for `ids` (b, s) after `state`, and the state after the last id."""
        feed = {"input_ids": np.ascontiguousarray(ids, dtype=np.int64)}
        feed.update(zip(self._state_names, state, strict=True))
        outputs = self.session.run(self._output_names, feed)
        return outputs[0], outputs[1:]


class StackGenerator:
    """`generate(prompt, ...)` for a stack file, with the same API and sampling as the GPT's
    `TextGenerator`."""

    def __init__(self, path: str | Path, threads: int | None = None) -> None:
        self.model = OnnxStack(path, threads=threads)
        self.tokenizer = self.model.tokenizer
        self.block_size = self.model.block_size
        self.vocab_size = self.model.vocab_size
        # n_layer/n_embd keep the chat header meaningful: the stack's layer count and first width.
        self.config = {**self.model.config, "n_layer": len(self.model.layers) - 1,
                       "n_embd": self.model.layers[0].get("n_embd")}

    def _forward_window(self, window: Sequence[int], past: list[int]) -> tuple[np.ndarray, list[int]]:
        """Windowed stacks: re-read the whole window (past ids + new ids) from zero state."""
        context = [*past, *window]
        ids = np.asarray([context], dtype=np.int64)
        if self.model.sequence_length:  # a fixed-length graph: pad on the right
            ids = np.pad(ids, ((0, 0), (0, self.model.sequence_length - len(context))))
        logits, _ = self.model.forward(ids, self.model.empty_state())
        return logits[0, len(context) - 1], context

    def _forward_step(self, window: Sequence[int], state: list[np.ndarray]
                      ) -> tuple[np.ndarray, list[np.ndarray]]:
        """Stepped stacks: feed each id once, carrying the RNN/LSTM state."""
        for token in window:
            logits, state = self.model.forward(np.asarray([[token]], dtype=np.int64), state)
        return logits[0, -1], state

    def generate(
        self,
        prompt: str,
        max_new_tokens: int = 200,
        temperature: float = 0.8,
        top_k: int | None = None,
        top_p: float | None = None,
        repetition_penalty: float = 1.0,
        seed: int | None = None,
    ) -> Iterator[str]:
        """Yield the text of each new token as it is sampled; settings and prompt are checked
        here, before the first token."""
        settings = SamplingSettings(temperature, top_k, top_p, repetition_penalty)
        validate_max_new_tokens(max_new_tokens)
        ids = start_ids(self.tokenizer, prompt)
        windowed = self.model.windowed
        block = decode_window(windowed, self.block_size, len(ids), max_new_tokens)
        tokens = decode(ids, block_size=block,
                        forward=self._forward_window if windowed else self._forward_step,
                        empty_past=list if windowed else self.model.empty_state,
                        settings=settings, max_new_tokens=max_new_tokens, seed=seed)
        return (self.tokenizer.decode([t]) for t in tokens)
