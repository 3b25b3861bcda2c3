"""Open an exported textgen GPT ONNX model and hold it to the contract before any sampling.

The checks every kind shares (read, structure scan, textgen header, kind, checksum, operators,
session from the checked bytes) are runtime/onnx_file.py's; here the GPT adds its shape from the
config, every size bounded before anything is allocated (runtime/model_limits.py), and its
I/O contract: inputs and outputs with the contract's names, element types, ranks and (where
static) sizes.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import onnxruntime as ort

from runtime.model_limits import LIMITS, activation_bytes, bounded_size, check_memory
from runtime.onnx_file import (
    FLOAT,
    INT32,
    INT64,
    Port,
    basic_session_options,
    check_io,
    fail,
    read_textgen_onnx,
)
from runtime.tokenizer import CharTokenizer
from runtime.yoke_spec import parse_yoke

if TYPE_CHECKING:
    from runtime.cache_buffers import CacheBuffers


@dataclass(frozen=True)
class GPTShape:
    n_layer: int
    n_head: int
    head_size: int
    block_size: int
    vocab_size: int
    state_size: int = 0  # width of the stateful yoke's state (input yoke_state), 0 without one
    rotary: bool = False  # rotary positions: the graph takes position_ids, the cache can roll
    # GroupQueryAttention: the graph takes seqlens_k and total_sequence_length, and its cache can
    # live in fixed buffers extended in place (runtime/cache_buffers.py)
    cache_buffers: bool = False


def _shape(path: Path, config: dict[str, Any], tokenizer: CharTokenizer) -> GPTShape:
    n_layer, n_head, n_embd, block_size, vocab_size = (
        bounded_size(path, config, key)
        for key in ("n_layer", "n_head", "n_embd", "block_size", "vocab_size"))
    if n_embd % n_head:
        raise fail(path, f"its model config has n_embd {n_embd} not divisible by n_head {n_head}")
    shape = GPTShape(n_layer, n_head, n_embd // n_head, block_size, vocab_size)
    if shape.vocab_size != tokenizer.vocab_size:
        raise fail(path, f"the tokenizer has {tokenizer.vocab_size} tokens but the model "
                         f"{shape.vocab_size}")
    check_memory(path, activation_bytes(context=block_size, width=2 * n_layer * n_embd,
                                        vocab=vocab_size, heads=n_head))
    yoke_text = config.get("yoke", "")
    if not isinstance(yoke_text, str) or len(yoke_text) > 100:
        raise fail(path, "its model config has an invalid yoke (not a short string)")
    try:
        yoke = parse_yoke(yoke_text, shape.n_layer)
    except ValueError as exc:
        raise fail(path, f"its model config has an invalid yoke ({exc})") from None
    if yoke is not None and not 1 <= yoke.hidden <= LIMITS["hidden_size"]:
        raise fail(path, f"its model config's yoke width is outside 1 to {LIMITS['hidden_size']:,}")
    positions = config.get("positions", "learned")  # files from before rotary have none
    if positions not in ("rotary", "learned"):
        raise fail(path, f"its model config has unknown positions {positions!r}")
    return replace(shape, state_size=yoke.hidden if yoke is not None and yoke.stateful else 0,
                   rotary=positions == "rotary")


def _ports(shape: GPTShape) -> tuple[dict[str, Port], dict[str, Port]]:
    inputs = {"input_ids": Port(INT64, 2)}
    if shape.rotary:
        inputs["position_ids"] = Port(INT64, 2)
    if shape.cache_buffers:
        inputs["seqlens_k"] = Port(INT32, 1)
        inputs["total_sequence_length"] = Port(INT32, 0)
    outputs = {"logits": Port(FLOAT, 3, {2: shape.vocab_size})}
    for i in range(shape.n_layer):
        for part in ("key", "value"):
            inputs[f"past_key_values.{i}.{part}"] = Port(FLOAT, 4, {1: shape.n_head, 3: shape.head_size})
            outputs[f"present.{i}.{part}"] = Port(FLOAT, 4, {1: shape.n_head, 3: shape.head_size})
    if shape.state_size:  # the stateful yoke's state in, every position's activation out
        inputs["yoke_state"] = Port(FLOAT, 2, {1: shape.state_size})
        outputs["yoke_state_out"] = Port(FLOAT, 3, {2: shape.state_size})
    return inputs, outputs


def position_ids(start: int, batch: int, length: int) -> np.ndarray:
    """A rotary graph's `position_ids` (batch, length) int64: start, start + 1, ... in every row."""
    return np.tile(np.arange(start, start + length, dtype=np.int64), (batch, 1))


def attention_lengths(past: int, batch: int, length: int) -> dict[str, np.ndarray]:
    """A GroupQueryAttention graph's length inputs for `length` new tokens after `past` valid
    cache positions in every row: seqlens_k (the valid positions after the call, minus one) and
    total_sequence_length."""
    return {"seqlens_k": np.full(batch, past + length - 1, np.int32),
            "total_sequence_length": np.array(past + length, np.int32)}


def session_options(threads: int | None) -> ort.SessionOptions:
    """`basic_session_options` (threads, spinning) with every graph optimisation on (layer-norm,
    GELU and matmul fusions on top of the export's). `threads` None keeps onnxruntime's
    default, one per physical core."""
    options = basic_session_options(threads)
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return options


class OnnxGPT:
    """A checked GPT ONNX model: one forward call with a key/value cache."""

    def __init__(self, path: str | Path, threads: int | None = None) -> None:
        self.path = Path(path)
        # A GAN or stack file: runtime.load() opens it with runtime/gan_model.py or stack_model.py.
        checked = read_textgen_onnx(self.path, "gpt", "not a GPT; open it with runtime.load(), "
                                                      "which picks the sampler for its kind")
        self.kind, self.tokenizer, self.config = checked.kind, checked.tokenizer, checked.config
        checked.verify_checksum()
        self.shape = _shape(self.path, self.config, self.tokenizer)
        self.session = checked.session(session_options(threads))
        takes = {arg.name for arg in self.session.get_inputs()}
        # Rotary files from before GroupQueryAttention have a cache that only grows (copied).
        self.shape = replace(self.shape, cache_buffers=self.shape.rotary and "seqlens_k" in takes)
        check_io(self.path, self.session, "textgen contract", *_ports(self.shape))
        self._past_names = [f"past_key_values.{i}.{p}" for i in range(self.shape.n_layer)
                            for p in ("key", "value")]
        self._output_names = ["logits"] + [f"present.{i}.{p}" for i in range(self.shape.n_layer)
                                           for p in ("key", "value")]

    def empty_past(self, batch_size: int = 1) -> list[np.ndarray]:
        s = self.shape
        return [np.zeros((batch_size, s.n_head, 0, s.head_size), np.float32)
                for _ in self._past_names]

    def forward(self, ids: np.ndarray, past: list[np.ndarray], position: int | None = None
                ) -> tuple[np.ndarray, list[np.ndarray]]:
        """Logits (b, s, V) for `ids` (b, s) after the cached `past`, and the extended cache.
        `position`: where ids[:, 0] sits, by default right after the past; a rotary model's
        rolled cache (runtime/window.py) is shorter than that. A stateful yoke model reads the
        window with a zero state (no earlier window)."""
        outputs = self.session.run(self._output_names, self._feed(ids, past, position))
        return outputs[0], outputs[1:]

    def _feed(self, ids: np.ndarray, past: list[np.ndarray], position: int | None = None,
              state: np.ndarray | None = None) -> dict[str, np.ndarray]:
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        feed = {"input_ids": ids}
        # A rolled cache is a view with gaps between rows; onnxruntime wants whole arrays.
        feed.update(zip(self._past_names, map(np.ascontiguousarray, past), strict=True))
        if self.shape.rotary:
            start = past[0].shape[2] if position is None else position
            feed["position_ids"] = position_ids(start, *ids.shape)
        if self.shape.cache_buffers:
            feed.update(attention_lengths(past[0].shape[2], *ids.shape))
        if self.shape.state_size:
            feed["yoke_state"] = (self.empty_state(len(ids)) if state is None
                                  else np.ascontiguousarray(state, dtype=np.float32))
        return feed

    def cache_buffers(self, batch_size: int = 1) -> CacheBuffers:
        """An empty in-place cache for a GroupQueryAttention file (`shape.cache_buffers`)."""
        from runtime.cache_buffers import CacheBuffers  # it builds on this module

        return CacheBuffers(self.session, self.shape, batch_size)

    def empty_state(self, batch_size: int = 1) -> np.ndarray:
        return np.zeros((batch_size, self.shape.state_size), np.float32)

    def forward_stateful(
        self, ids: np.ndarray, past: list[np.ndarray], state: np.ndarray
    ) -> tuple[np.ndarray, list[np.ndarray], np.ndarray]:
        """`forward` of a stateful yoke model with the window's state (b, H), also returning the
        yoke's activation of every position (b, s, H) (see runtime/yoke_state.py)."""
        outputs = self.session.run([*self._output_names, "yoke_state_out"],
                                   self._feed(ids, past, state=state))
        return outputs[0], outputs[1:-1], outputs[-1]
