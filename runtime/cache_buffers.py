"""A GroupQueryAttention file's key/value cache kept in place, as onnxruntime-genai keeps it.

Through the plain interface (past in, present out) the attention kernel returns the extended cache
as a new array, so every token copies the whole cache: at the baby shape and a context of 200,
~11 MB of memory traffic per token next to 43 MB of weights, and the copy goes to main memory
because the weights stream evicts the cache between two reads. Here each layer's keys and values
live in one buffer of block_size positions, bound with onnxruntime's I/O binding as both the past
input and the present output; GroupQueryAttention writes the new positions after the valid ones
(seqlens_k) and reads only those. A roll (runtime/window.py) moves the kept positions to the front
of each buffer, once per block_size/4 tokens.
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort

from runtime.model_file import GPTShape, attention_lengths, position_ids


class CacheBuffers:
    """The cache of one sampling run: `length` valid positions, `position` of the next token (it
    exceeds `length` once the cache has rolled). `forward` reads new tokens after them;
    `rolled` and `cleared` change the buffers in place and return them, so the decode loop
    (runtime/decode.py) can treat this as it treats a `RollingPast`."""

    def __init__(self, session: ort.InferenceSession, shape: GPTShape, batch: int = 1) -> None:
        self._session = session
        self.capacity = shape.block_size
        size = (batch, shape.n_head, shape.block_size, shape.head_size)
        self.buffers = [np.zeros(size, np.float32) for _ in range(2 * shape.n_layer)]
        self._binding = session.io_binding()
        self._binding.bind_output("logits")  # first, so it is output 0
        for index, buffer in enumerate(self.buffers):
            layer, part = divmod(index, 2)
            name = ("key", "value")[part]
            value = ort.OrtValue.ortvalue_from_numpy(buffer)  # shares the numpy memory
            self._binding.bind_ortvalue_input(f"past_key_values.{layer}.{name}", value)
            self._binding.bind_ortvalue_output(f"present.{layer}.{name}", value)
        self._bound: dict[str, np.ndarray] = {}
        self.length = 0
        self.position = 0

    def forward(self, ids: np.ndarray) -> np.ndarray:
        """Logits (b, s, V) of `ids` (b, s) read after the valid positions, which then include
        them."""
        batch, count = ids.shape
        if self.length + count > self.capacity:
            raise ValueError(f"{self.length} cached + {count} new positions exceed the "
                             f"{self.capacity} the buffers hold")
        # Kept until the next call: the binding reads these arrays' memory when the run starts.
        self._bound = {"input_ids": np.ascontiguousarray(ids, dtype=np.int64),
                       "position_ids": position_ids(self.position, batch, count),
                       **attention_lengths(self.length, batch, count)}
        for name, array in self._bound.items():
            self._binding.bind_cpu_input(name, array)
        self._binding.bind_output("logits")  # its length changes between calls: a fresh array
        self._session.run_with_iobinding(self._binding)
        self.length += count
        self.position += count
        return self._binding.get_outputs()[0].numpy()

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
