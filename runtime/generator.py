"""`TextGenerator`: streaming text generation from an exported GPT with numpy + onnxruntime."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from runtime.cache_buffers import CacheBuffers
from runtime.decode import decode
from runtime.model_file import OnnxGPT
from runtime.sampler import SamplingSettings, validate_max_new_tokens
from runtime.tokenizer import CharTokenizer
from runtime.window import RollingPast
from runtime.yoke_state import StatefulPast, carrier, stateful_forward


def start_ids(tokenizer: CharTokenizer, prompt: str) -> list[int]:
    """Token ids to continue from. An empty prompt starts at a newline (the start of a line of
    text) when the vocabulary has one, else at token 0; that start is not part of the output."""
    if prompt:
        return tokenizer.encode(prompt)
    return [tokenizer.chars.index("\n")] if "\n" in tokenizer.chars else [0]


class TextGenerator:
    def __init__(self, path: str | Path, threads: int | None = None) -> None:
        self.model = OnnxGPT(path, threads=threads)
        self.tokenizer = self.model.tokenizer
        self.block_size = self.model.shape.block_size
        self.vocab_size = self.model.shape.vocab_size
        self.config = self.model.config

    def _forward(self, ids: Sequence[int], past: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
        logits, present = self.model.forward(np.asarray([ids], dtype=np.int64), past)
        return logits[0, -1], present

    def _forward_rolling(self, ids: Sequence[int], past: RollingPast) -> tuple[np.ndarray, RollingPast]:
        logits, present = self.model.forward(np.asarray([ids], dtype=np.int64), past.cache,
                                             past.position)
        return logits[0, -1], RollingPast(present, past.position + len(ids))

    @staticmethod
    def _forward_buffered(ids: Sequence[int], cache: CacheBuffers) -> tuple[np.ndarray, CacheBuffers]:
        return cache.forward(np.asarray([ids], dtype=np.int64))[0, -1], cache

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
        """Yield the text of each new token as it is sampled. Settings and the prompt are checked
        here, before the first token, so errors surface at the call."""
        settings = SamplingSettings(temperature, top_k, top_p, repetition_penalty)
        validate_max_new_tokens(max_new_tokens)
        ids = start_ids(self.tokenizer, prompt)
        if self.model.shape.state_size:  # a stateful yoke: the state rides across windows
            tokens = decode(ids, block_size=self.block_size,
                            forward=stateful_forward(self._forward_stateful),
                            empty_past=self._empty_stateful, settings=settings,
                            max_new_tokens=max_new_tokens, seed=seed,
                            carry=carrier(self.model.empty_past))
        elif self.model.shape.cache_buffers:  # rolls too, in buffers extended in place
            cache = self.model.cache_buffers()
            tokens = decode(ids, block_size=self.block_size, forward=self._forward_buffered,
                            empty_past=cache.cleared, settings=settings,
                            max_new_tokens=max_new_tokens, seed=seed, rolls=True)
        elif self.model.shape.rotary:  # the cache rolls when the window is full
            tokens = decode(ids, block_size=self.block_size, forward=self._forward_rolling,
                            empty_past=lambda: RollingPast(self.model.empty_past()),
                            settings=settings, max_new_tokens=max_new_tokens, seed=seed,
                            rolls=True)
        else:
            tokens = decode(ids, block_size=self.block_size, forward=self._forward,
                            empty_past=self.model.empty_past, settings=settings,
                            max_new_tokens=max_new_tokens, seed=seed)
        return (self.tokenizer.decode([t]) for t in tokens)

    def _forward_stateful(self, ids: Sequence[int], past: list[np.ndarray], state: np.ndarray
                          ) -> tuple[np.ndarray, list[np.ndarray], np.ndarray]:
        logits, present, rows = self.model.forward_stateful(
            np.asarray([ids], dtype=np.int64), past, state)
        return logits[0, -1], present, rows

    def _empty_stateful(self) -> StatefulPast:
        return StatefulPast(self.model.empty_past(), self.model.empty_state())

    def logits(self, ids: Sequence[int]) -> np.ndarray:
        """Logits (len(ids), V) of one uncached call: for parity checks."""
        logits, _ = self.model.forward(np.asarray([ids], dtype=np.int64), self.model.empty_past())
        return logits[0]
