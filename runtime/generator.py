"""`TextGenerator`: streaming text generation from an exported GPT with numpy + onnxruntime."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np

from runtime.cache_buffers import CacheBuffers
from runtime.decode import decode_batch
from runtime.model_file import OnnxGPT
from runtime.multi_sample import sampled
from runtime.sampler import SamplingSettings
from runtime.tokenizer import Tokenizer, line_start_ids
from runtime.window import RollingPast
from runtime.yoke_state import StatefulPast, carrier, stateful_forward


def start_ids(tokenizer: Tokenizer, prompt: str) -> list[int]:
    """Token ids to continue from. An empty prompt starts at a newline (the start of a line of
    text) when the vocabulary has one, else at token 0; that start is not part of the output."""
    if prompt:
        return tokenizer.encode(prompt)
    return line_start_ids(tokenizer)


class TextGenerator:
    def __init__(self, path: str | Path, threads: int | None = None) -> None:
        self.model = OnnxGPT(path, threads=threads)
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

    def generate(
        self,
        prompt: str | list[str],
        max_new_tokens: int = 200,
        temperature: float | Sequence[float] = 0.8,
        top_k: int | None = None,
        top_p: float | None = None,
        repetition_penalty: float = 1.0,
        seed: int | None = None,
        *,
        num_samples: int = 1,
        stop: str | Sequence[str] = (),
    ) -> Iterator[str] | Iterator[tuple[int, str]]:
        """Yield the text of each new token as it is sampled. Settings and the prompt are checked
        here, before the first token, so errors surface at the call.

        One `str` prompt, one temperature, one sample: the pieces of that text. A list of
        prompts, several temperatures or `num_samples` > 1: `(index, piece)` pairs, the
        sequences of each prompt sampled as one batch (runtime/multi_sample.py, which also says
        how they are numbered and seeded). `stop`: texts that end a sequence (not yielded)."""
        return sampled(self.token_batches, self.piece_decoder, self._start_ids, prompt,
                       max_new_tokens=max_new_tokens, temperature=temperature, top_k=top_k,
                       top_p=top_p, repetition_penalty=repetition_penalty, seed=seed,
                       num_samples=num_samples, stop=stop)

    def _start_ids(self, prompt: str) -> list[int]:
        return start_ids(self.tokenizer, prompt)

    def piece_decoder(self) -> Callable[[int], str]:
        """Token id -> text piece, for one sequence: never half a character or word piece."""
        return self.tokenizer.piece_decoder()

    def logits(self, ids: Sequence[int]) -> np.ndarray:
        """Logits (len(ids), V) of one uncached call: for parity checks."""
        logits, _ = self.model.forward(np.asarray([ids], dtype=np.int64), self.model.empty_past())
        return logits[0]
