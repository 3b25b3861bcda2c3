"""The GPT in the runtime: its ONNX file opened and held to the contract, its key/value cache
kept in place, and `TextGenerator`, which streams text from it.

Open an exported textgen GPT ONNX model and hold it to the contract before any sampling.

The checks every kind shares (read, structure scan, textgen header, kind, checksum, operators,
session from the checked bytes) are runtime/onnx_file.py's; here the GPT adds its shape from the
config, every size bounded before anything is allocated (runtime/model_limits.py), and its
I/O contract: inputs and outputs with the contract's names, element types, ranks and (where
static) sizes.

A GroupQueryAttention file's key/value cache kept in place, as onnxruntime-genai keeps it.

Through the plain interface (past in, present out) the attention kernel returns the extended cache
as a new array, so every token copies the whole cache: at the baby shape and a context of 200,
~11 MB of memory traffic per token next to 43 MB of weights, and the copy goes to main memory
because the weights stream evicts the cache between two reads. Here each layer's keys and values
live in one buffer of block_size positions, bound with onnxruntime's I/O binding as both the past
input and the present output; GroupQueryAttention writes the new positions after the valid ones
(seqlens_k) and reads only those. A roll (runtime/window.py) moves the kept positions to the front
of each buffer, once per block_size/4 tokens.

`TextGenerator`: streaming text generation from an exported GPT with numpy + onnxruntime.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import onnxruntime as ort

from runtime.contract import (
    INPUT_IDS,
    LOGITS,
    POSITION_IDS,
    SEQLENS_K,
    TOTAL_SEQUENCE_LENGTH,
    YOKE_STATE,
    YOKE_STATE_OUT,
    past_names,
    present_names,
)
from runtime.decode import decode_batch
from runtime.model_limits import LIMITS, activation_bytes, bounded_size, check_memory
from runtime.multi_sample import SequenceSampler
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
from runtime.sampler import SamplingSettings
from runtime.tokenizer import CharTokenizer
from runtime.window import RollingPast
from runtime.yoke_spec import parse_yoke
from runtime.yoke_state import StatefulPast, carrier, stateful_forward

if TYPE_CHECKING:
    from runtime.gpt import CacheBuffers


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
    # live in fixed buffers extended in place (runtime/gpt.py)
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
    inputs = {INPUT_IDS: Port(INT64, 2)}
    if shape.rotary:
        inputs[POSITION_IDS] = Port(INT64, 2)
    if shape.cache_buffers:
        inputs[SEQLENS_K] = Port(INT32, 1)
        inputs[TOTAL_SEQUENCE_LENGTH] = Port(INT32, 0)
    outputs = {LOGITS: Port(FLOAT, 3, {2: shape.vocab_size})}
    for past, present in zip(past_names(shape.n_layer), present_names(shape.n_layer), strict=True):
        inputs[past] = Port(FLOAT, 4, {1: shape.n_head, 3: shape.head_size})
        outputs[present] = Port(FLOAT, 4, {1: shape.n_head, 3: shape.head_size})
    if shape.state_size:  # the stateful yoke's state in, every position's activation out
        inputs[YOKE_STATE] = Port(FLOAT, 2, {1: shape.state_size})
        outputs[YOKE_STATE_OUT] = Port(FLOAT, 3, {2: shape.state_size})
    return inputs, outputs


def position_ids(start: int, batch: int, length: int) -> np.ndarray:
    """A rotary graph's `position_ids` (batch, length) int64: start, start + 1, ... in every row."""
    return np.tile(np.arange(start, start + length, dtype=np.int64), (batch, 1))


def attention_lengths(past: int, batch: int, length: int) -> dict[str, np.ndarray]:
    """A GroupQueryAttention graph's length inputs for `length` new tokens after `past` valid
    cache positions in every row: seqlens_k (the valid positions after the call, minus one) and
    total_sequence_length."""
    return {SEQLENS_K: np.full(batch, past + length - 1, np.int32),
            TOTAL_SEQUENCE_LENGTH: np.array(past + length, np.int32)}


def session_options(threads: int | None, spin: bool | None = None) -> ort.SessionOptions:
    """`basic_session_options` (threads, spinning) with every graph optimisation on (layer-norm,
    GELU and matmul fusions on top of the export's). `threads` None keeps onnxruntime's
    default, one per physical core."""
    options = basic_session_options(threads, spin)
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return options


class OnnxGPT:
    """A checked GPT ONNX model: one forward call with a key/value cache."""

    def __init__(self, path: str | Path, threads: int | None = None, spin: bool | None = None) -> None:
        self.path = Path(path)
        # A GAN or stack file: runtime.load() opens it with runtime/gan.py or runtime/stack.py.
        checked = read_textgen_onnx(self.path, "gpt", "not a GPT; open it with runtime.load(), "
                                                      "which picks the sampler for its kind")
        self.kind, self.tokenizer, self.config = checked.kind, checked.tokenizer, checked.config
        checked.verify_checksum()
        self.shape = _shape(self.path, self.config, self.tokenizer)
        self.session = checked.session(session_options(threads, spin))
        takes = {arg.name for arg in self.session.get_inputs()}
        # Rotary files from before GroupQueryAttention have a cache that only grows (copied).
        self.shape = replace(self.shape, cache_buffers=self.shape.rotary and SEQLENS_K in takes)
        check_io(self.path, self.session, "textgen contract", *_ports(self.shape))
        self._past_names = past_names(self.shape.n_layer)
        self._output_names = [LOGITS, *present_names(self.shape.n_layer)]

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
        feed = {INPUT_IDS: ids}
        # A rolled cache is a view with gaps between rows; onnxruntime wants whole arrays.
        feed.update(zip(self._past_names, map(np.ascontiguousarray, past), strict=True))
        if self.shape.rotary:
            start = past[0].shape[2] if position is None else position
            feed[POSITION_IDS] = position_ids(start, *ids.shape)
        if self.shape.cache_buffers:
            feed.update(attention_lengths(past[0].shape[2], *ids.shape))
        if self.shape.state_size:
            feed[YOKE_STATE] = (self.empty_state(len(ids)) if state is None
                                  else np.ascontiguousarray(state, dtype=np.float32))
        return feed

    def cache_buffers(self, batch_size: int = 1) -> CacheBuffers:
        """An empty in-place cache for a GroupQueryAttention file (`shape.cache_buffers`)."""
        from runtime.gpt import CacheBuffers  # it builds on this module

        return CacheBuffers(self.session, self.shape, batch_size)

    def empty_state(self, batch_size: int = 1) -> np.ndarray:
        return np.zeros((batch_size, self.shape.state_size), np.float32)

    def forward_stateful(
        self, ids: np.ndarray, past: list[np.ndarray], state: np.ndarray
    ) -> tuple[np.ndarray, list[np.ndarray], np.ndarray]:
        """`forward` of a stateful yoke model with the window's state (b, H), also returning the
        yoke's activation of every position (b, s, H) (see runtime/yoke_state.py)."""
        outputs = self.session.run([*self._output_names, YOKE_STATE_OUT],
                                   self._feed(ids, past, state=state))
        return outputs[0], outputs[1:-1], outputs[-1]


class CacheBuffers:
    """The cache of one sampling run: `length` valid positions, `position` of the next token (it
    exceeds `length` once the cache has rolled). `forward` reads new tokens after them;
    `rolled` and `cleared` change the buffers in place and return them, so the decode loop
    (runtime/decode.py) can treat this as it treats a `RollingPast`.

    A call of one token per row (every cached decode step) runs a second binding whose inputs
    and logits are arrays bound once and written in place: rebinding four inputs and fetching a
    fresh logits array cost ~0.2 ms of a 1.4 ms token at the sampling bench's shape
    (docs/performance.md)."""

    def __init__(self, session: ort.InferenceSession, shape: GPTShape, batch: int = 1) -> None:
        self._session = session
        self.capacity = shape.block_size
        size = (batch, shape.n_head, shape.block_size, shape.head_size)
        self.buffers = [np.zeros(size, np.float32) for _ in range(2 * shape.n_layer)]
        cache = [ort.OrtValue.ortvalue_from_numpy(buffer) for buffer in self.buffers]  # shared
        self._binding = session.io_binding()
        self._binding.bind_output(LOGITS)  # first, so it is output 0
        self._bind_cache(self._binding, cache, shape.n_layer)
        self._bound: dict[str, np.ndarray] = {}
        self._step_inputs = {INPUT_IDS: np.zeros((batch, 1), np.int64),
                             POSITION_IDS: np.zeros((batch, 1), np.int64),
                             SEQLENS_K: np.zeros(batch, np.int32),
                             TOTAL_SEQUENCE_LENGTH: np.zeros((), np.int32)}
        self._step_logits = np.zeros((batch, 1, shape.vocab_size), np.float32)
        self._step = session.io_binding()
        for name, array in self._step_inputs.items():
            self._step.bind_ortvalue_input(name, ort.OrtValue.ortvalue_from_numpy(array))
        self._step.bind_ortvalue_output(LOGITS, ort.OrtValue.ortvalue_from_numpy(self._step_logits))
        self._bind_cache(self._step, cache, shape.n_layer)
        self.length = 0
        self.position = 0

    @staticmethod
    def _bind_cache(binding: ort.IOBinding, cache: list[ort.OrtValue], n_layer: int) -> None:
        """Every past input and its present output bound to the same buffer: extended in place."""
        for value, past, present in zip(cache, past_names(n_layer), present_names(n_layer),
                                        strict=True):
            binding.bind_ortvalue_input(past, value)
            binding.bind_ortvalue_output(present, value)

    def forward(self, ids: np.ndarray) -> np.ndarray:
        """Logits (b, s, V) of `ids` (b, s) read after the valid positions, which then include
        them."""
        batch, count = ids.shape
        if self.length + count > self.capacity:
            raise ValueError(f"{self.length} cached + {count} new positions exceed the "
                             f"{self.capacity} the buffers hold")
        # Kept until the next call: the binding reads these arrays' memory when the run starts.
        self._bound = {INPUT_IDS: np.ascontiguousarray(ids, dtype=np.int64),
                       POSITION_IDS: position_ids(self.position, batch, count),
                       **attention_lengths(self.length, batch, count)}
        for name, array in self._bound.items():
            self._binding.bind_cpu_input(name, array)
        self._binding.bind_output(LOGITS)  # its length changes between calls: a fresh array
        self._session.run_with_iobinding(self._binding)
        self.length += count
        self.position += count
        return self._binding.get_outputs()[0].numpy()

    def step(self, tokens: Sequence[int]) -> np.ndarray:
        """`forward` of one token per row, the last logits (b, V): a view of the bound array,
        valid until the next call. Every cached decode step is one."""
        if self.length + 1 > self.capacity:
            raise ValueError(f"{self.length} cached positions fill the {self.capacity} the "
                             "buffers hold")
        inputs = self._step_inputs
        inputs[INPUT_IDS][:, 0] = tokens
        inputs[POSITION_IDS].fill(self.position)
        inputs[SEQLENS_K].fill(self.length)  # valid positions after the call, minus one
        inputs[TOTAL_SEQUENCE_LENGTH].fill(self.length + 1)
        self._session.run_with_iobinding(self._step)
        self.length += 1
        self.position += 1
        return self._step_logits[:, 0]

    def rolled(self, drop: int) -> CacheBuffers:
        """Without the `drop` oldest positions; the next position is unchanged."""
        keep = self.length - drop
        for buffer in self.buffers:
            buffer[:, :, :keep] = buffer[:, :, drop:self.length]  # numpy copies overlaps safely
        self.length = keep
        return self

    def cleared(self) -> CacheBuffers:
        """Empty, the next token at position 0."""
        self.length = self.position = 0
        return self


class TextGenerator(SequenceSampler):
    """`generate(prompt, ...)` for a GPT file (runtime/multi_sample.py's `SequenceSampler`)."""

    def __init__(self, path: str | Path, threads: int | None = None, spin: bool | None = None) -> None:
        self.model = OnnxGPT(path, threads=threads, spin=spin)
        self.tokenizer = self.model.tokenizer
        self.block_size = self.model.shape.block_size
        self.vocab_size = self.model.shape.vocab_size
        self.config = self.model.config

    def _forward(self, windows: list[list[int]], past: list[np.ndarray]
                 ) -> tuple[np.ndarray, list[np.ndarray]]:
        logits, present = self.model.forward(np.asarray(windows, dtype=np.int64), past)
        return logits[:, -1], present

    def _forward_rolling(self, windows: list[list[int]], past: RollingPast
                         ) -> tuple[np.ndarray, RollingPast]:
        logits, present = self.model.forward(np.asarray(windows, dtype=np.int64), past.cache,
                                             past.position)
        return logits[:, -1], RollingPast(present, past.position + len(windows[0]))

    @staticmethod
    def _forward_buffered(windows: list[list[int]], cache: CacheBuffers
                          ) -> tuple[np.ndarray, CacheBuffers]:
        if len(windows[0]) == 1:  # a cached step: the decode loop samples before the next call
            return cache.step([window[0] for window in windows]), cache
        return cache.forward(np.asarray(windows, dtype=np.int64))[:, -1], cache

    def _forward_stateful(self, windows: list[list[int]], past: list[np.ndarray], state: np.ndarray
                          ) -> tuple[np.ndarray, list[np.ndarray], np.ndarray]:
        logits, present, rows = self.model.forward_stateful(
            np.asarray(windows, dtype=np.int64), past, state)
        return logits[:, -1], present, rows

    def token_batches(self, ids: list[int], settings: list[SamplingSettings],
                      seeds: list[int | None], max_new_tokens: int) -> Iterator[list[int]]:
        """One new token per sequence per step for len(settings) sequences continuing `ids`,
        one model call per step for all of them (runtime/decode.py `decode_batch`)."""
        batch = len(settings)
        common = dict(block_size=self.block_size, settings=settings, seeds=seeds,
                      max_new_tokens=max_new_tokens)
        if self.model.shape.state_size:  # a stateful yoke: the state rides across windows
            return decode_batch(ids, forward=stateful_forward(self._forward_stateful),
                                empty_past=lambda: StatefulPast(self.model.empty_past(batch),
                                                                self.model.empty_state(batch)),
                                carry=carrier(lambda: self.model.empty_past(batch)), **common)
        if self.model.shape.cache_buffers:  # rolls too, in buffers extended in place
            cache = self.model.cache_buffers(batch)
            return decode_batch(ids, forward=self._forward_buffered, empty_past=cache.cleared,
                                rolls=True, **common)
        if self.model.shape.rotary:  # the cache rolls when the window is full
            return decode_batch(ids, forward=self._forward_rolling,
                                empty_past=lambda: RollingPast(self.model.empty_past(batch)),
                                rolls=True, **common)
        return decode_batch(ids, forward=self._forward,
                            empty_past=lambda: self.model.empty_past(batch), **common)

    def logits(self, ids: Sequence[int]) -> np.ndarray:
        """Logits (len(ids), V) of one uncached call: for parity checks."""
        logits, _ = self.model.forward(np.asarray([ids], dtype=np.int64), self.model.empty_past())
        return logits[0]
