"""The key/value cache of a running batch whose rows each have their own length.

The serving scheduler (runtime/scheduler.py) keeps one of these for a GroupQueryAttention GPT
file. Like runtime/gpt.py's `CacheBuffers` (one sampling run's cache), each layer's keys and
values live in one buffer, bound with onnxruntime's I/O binding as both the past input and the
present output, so the attention kernel extends them in place. Here every row has its own valid
length and next position: GroupQueryAttention takes `seqlens_k` per row, so rows of different
lengths share one step, and each row reads exactly the positions it would read alone.

The running rows sit in rows 0..k-1 (the scheduler moves the last row into a freed one), so a
step binds the first k rows of every buffer: a view, no copy. A row's prompt (and a slide's
re-read) is read alone, with batch 1, into that row's slice of the buffers: the same call, on
the same bytes, that `CacheBuffers.forward` makes for a run of its own.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import onnxruntime as ort

from runtime.contract import (
    INPUT_IDS,
    LOGITS,
    POSITION_IDS,
    SEQLENS_K,
    TOTAL_SEQUENCE_LENGTH,
    past_names,
    present_names,
)
from runtime.gpt import OnnxGPT, attention_lengths, position_ids


class RowCache:
    """`capacity` rows of cache, row r holding `lengths[r]` valid positions, its next token at
    `positions[r]` (past `lengths[r]` once the row has rolled)."""

    def __init__(self, model: OnnxGPT, capacity: int) -> None:
        shape = model.shape
        if not shape.cache_buffers:
            raise ValueError("a RowCache needs a GroupQueryAttention GPT file (per-row lengths)")
        self._session = model.session
        self._n_layer = shape.n_layer
        self._vocab_size = shape.vocab_size
        self.capacity = capacity
        self.block_size = shape.block_size
        size = (capacity, shape.n_head, shape.block_size, shape.head_size)
        self.buffers = [np.zeros(size, np.float32) for _ in range(2 * shape.n_layer)]
        self.lengths = [0] * capacity
        self.positions = [0] * capacity
        self._reads: dict[int, ort.IOBinding] = {}  # row -> its one-row binding
        self._steps: dict[int, tuple[ort.IOBinding, dict[str, np.ndarray], np.ndarray]] = {}
        self._bound: dict[str, np.ndarray] = {}

    def _bind_cache(self, binding: ort.IOBinding, rows: slice) -> None:
        """Every past input and its present output bound to the same rows of one buffer."""
        for buffer, past, present in zip(self.buffers, past_names(self._n_layer),
                                         present_names(self._n_layer), strict=True):
            value = ort.OrtValue.ortvalue_from_numpy(buffer[rows])  # a view: extended in place
            binding.bind_ortvalue_input(past, value)
            binding.bind_ortvalue_output(present, value)

    def read(self, row: int, ids: Sequence[int]) -> np.ndarray:
        """Logits (V,) of the last of `ids`, read into `row` from an empty cache: a prompt, or a
        slide's re-read. The row then holds len(ids) positions."""
        count = len(ids)
        if not 0 < count <= self.block_size:
            raise ValueError(f"a read of {count} tokens does not fit {self.block_size} positions")
        binding = self._reads.get(row)
        if binding is None:
            binding = self._reads[row] = self._session.io_binding()
            binding.bind_output(LOGITS)  # first, so it is output 0
            self._bind_cache(binding, slice(row, row + 1))
        # Kept until the next call: the binding reads these arrays' memory when the run starts.
        self._bound = {INPUT_IDS: np.asarray([ids], dtype=np.int64),
                       POSITION_IDS: position_ids(0, 1, count), **attention_lengths(0, 1, count)}
        for name, array in self._bound.items():
            binding.bind_cpu_input(name, array)
        binding.bind_output(LOGITS)  # its length changes between calls: a fresh array
        self._session.run_with_iobinding(binding)
        self.lengths[row] = self.positions[row] = count
        return binding.get_outputs()[0].numpy()[0, -1].copy()

    def roll(self, row: int, drop: int) -> None:
        """Row `row` without its `drop` oldest positions; its next position is unchanged."""
        length = self.lengths[row]
        keep = length - drop
        for buffer in self.buffers:
            buffer[row, :, :keep] = buffer[row, :, drop:length]  # numpy copies overlaps safely
        self.lengths[row] = keep

    def copy_row(self, source: int, target: int) -> None:
        """Row `target` becomes a copy of row `source` (its valid positions and counters)."""
        length = self.lengths[source]
        for buffer in self.buffers:
            buffer[target, :, :length] = buffer[source, :, :length]
        self.lengths[target] = length
        self.positions[target] = self.positions[source]

    def _step_binding(self, count: int) -> tuple[ort.IOBinding, dict[str, np.ndarray], np.ndarray]:
        cached = self._steps.get(count)
        if cached is None:
            inputs = {INPUT_IDS: np.zeros((count, 1), np.int64),
                      POSITION_IDS: np.zeros((count, 1), np.int64),
                      SEQLENS_K: np.zeros(count, np.int32),
                      TOTAL_SEQUENCE_LENGTH: np.zeros((), np.int32)}
            logits = np.zeros((count, 1, self._vocab_size), np.float32)
            binding = self._session.io_binding()
            for name, array in inputs.items():
                binding.bind_ortvalue_input(name, ort.OrtValue.ortvalue_from_numpy(array))
            binding.bind_ortvalue_output(LOGITS, ort.OrtValue.ortvalue_from_numpy(logits))
            self._bind_cache(binding, slice(0, count))
            cached = self._steps[count] = (binding, inputs, logits)
        return cached

    def step(self, tokens: Sequence[int | None]) -> np.ndarray:
        """One token for each of rows 0..len(tokens)-1, read after its valid positions; logits
        (k, V), a view valid until the next step of k rows. A row given None reads nothing: it
        is fed a placeholder written just past its valid positions (the next token overwrites
        it) and its logits are meaningless."""
        count = len(tokens)
        binding, inputs, logits = self._step_binding(count)
        total = 0
        for row, token in enumerate(tokens):
            length = self.lengths[row]
            if length + 1 > self.block_size:
                raise ValueError(f"row {row}: {length} cached positions fill the "
                                 f"{self.block_size} the buffers hold")
            inputs[INPUT_IDS][row, 0] = 0 if token is None else token
            inputs[POSITION_IDS][row, 0] = self.positions[row]
            inputs[SEQLENS_K][row] = length  # valid positions after the call, minus one
            total = max(total, length + 1)
        inputs[TOTAL_SEQUENCE_LENGTH].fill(total)
        self._session.run_with_iobinding(binding)
        for row, token in enumerate(tokens):
            if token is not None:
                self.lengths[row] += 1
                self.positions[row] += 1
        return logits[:, 0]
