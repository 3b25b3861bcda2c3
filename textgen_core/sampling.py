"""Torch-side sampling for every family: the GPT, the layer stack and the GAN.

GPT: Torch-side sampling with the KV cache, through the runtime's decoding loop and sampler, so the
same seed and settings give the same text here and in the exported runtime.

Layer stack: through the runtime's decoding loop and sampler.

Two ways to read the context, chosen by the layers (the runtime does the same):
- a stack with position-dependent layers (PositionalEmbedding, attention, Block) re-reads the
  current window on every step, from zero recurrent state, exactly as it was trained;
- a purely recurrent stack feeds each new token once and carries the RNN/LSTM state, so its
  context is unbounded and a step costs the same at any length.

GAN: sentences from its generator, with the runtime's noise: numpy draws it exactly as
`runtime.chat --model gan.onnx` does (runtime/gan.py), so the same seed and temperature give the
same sentences from the checkpoint, the ONNX file and the TorchScript file.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch

from runtime.decode import decode_batch
from runtime.errors import SamplingError
from runtime.gan import draw_noise
from runtime.multi_sample import PieceDecoder, TokenBatches, sampled
from runtime.sampler import SamplingSettings
from runtime.stack import decode_window
from runtime.tokenizer import CharTokenizer, start_ids
from runtime.window import RollingPast
from runtime.word_tokenizer import WordTokenizer
from runtime.yoke_state import StatefulPast, carrier, stateful_forward
from textgen_core.models.gan import Generator
from textgen_core.models.gpt import GPT, KeyValue
from textgen_core.models.stack.model import Stack


def token_batches(model: GPT | Stack, device: torch.device | str = "cpu") -> TokenBatches:
    """The model's `token_batches(ids, settings, seeds, max_new_tokens)` (runtime/multi_sample.py):
    one token per sequence per step, one model call per step for all of them."""
    if isinstance(model, Stack):
        return _stack_token_batches(model, device)
    return _gpt_token_batches(model, device)


def _gpt_token_batches(model: GPT, device: torch.device | str) -> TokenBatches:
    device = torch.device(device)

    @torch.inference_mode()
    def forward(windows: list[list[int]], past: list[KeyValue]) -> tuple[np.ndarray, list[KeyValue]]:
        idx = torch.tensor(windows, dtype=torch.long, device=device)
        logits, _, present = model(idx, past_key_values=past)
        return logits[:, -1].float().cpu().numpy(), present

    @torch.inference_mode()
    def forward_rolling(windows: list[list[int]], past: RollingPast) -> tuple[np.ndarray, RollingPast]:
        idx = torch.tensor(windows, dtype=torch.long, device=device)
        positions = torch.arange(idx.shape[1], device=device) + past.position
        logits, _, present = model(idx, past_key_values=past.cache, positions=positions)
        return logits[:, -1].float().cpu().numpy(), RollingPast(present, past.position + idx.shape[1])

    @torch.inference_mode()
    def call(windows: list[list[int]], past: list[KeyValue], state: torch.Tensor
             ) -> tuple[np.ndarray, list[KeyValue], torch.Tensor]:
        idx = torch.tensor(windows, dtype=torch.long, device=device)
        logits, _, present, hidden = model.forward_stateful(idx, state, past_key_values=past)
        return logits[:, -1].float().cpu().numpy(), present, hidden

    def run(ids: list[int], settings: list[SamplingSettings], seeds: list[int | None],
            max_new_tokens: int) -> Iterator[list[int]]:
        batch = len(settings)

        def empty() -> list[KeyValue]:
            return model.empty_cache(batch, device)

        common = dict(block_size=model.config.block_size, settings=settings, seeds=seeds,
                      max_new_tokens=max_new_tokens)
        state_size = model.config.yoke_state_size
        if state_size:
            return decode_batch(ids, forward=stateful_forward(call),
                                empty_past=lambda: StatefulPast(
                                    empty(), torch.zeros(batch, state_size, device=device)),
                                carry=carrier(empty), **common)
        if model.config.rotary:  # the cache rolls when the window is full (runtime/window.py)
            return decode_batch(ids, forward=forward_rolling,
                                empty_past=lambda: RollingPast(empty()), rolls=True, **common)
        return decode_batch(ids, forward=forward, empty_past=empty, **common)

    return run


def piece_decoder(tokenizer: CharTokenizer) -> PieceDecoder:
    """A fresh token id -> text piece function per sequence, as the runtime's generators decode."""
    return tokenizer.piece_decoder  # stateful: never half a character or word piece


def generate(
    model: GPT | Stack,
    tokenizer: CharTokenizer,
    prompt: str | list[str],
    *,
    max_new_tokens: int = 200,
    temperature: float | Sequence[float] = 0.8,
    top_k: int | None = None,
    top_p: float | None = None,
    repetition_penalty: float = 1.0,
    seed: int | None = None,
    device: torch.device | str = "cpu",
    num_samples: int = 1,
    stop: str | Sequence[str] = (),
) -> Iterator[str] | Iterator[tuple[int, str]]:
    """Yield the text of each new token; checks settings and prompt before the first one.
    As the runtime's `generate`: one str prompt gives its pieces, several sequences give
    `(index, piece)` pairs (runtime/multi_sample.py)."""
    return sampled(token_batches(model, device), piece_decoder(tokenizer),
                   lambda text: start_ids(tokenizer, text), prompt,
                   max_new_tokens=max_new_tokens, temperature=temperature, top_k=top_k,
                   top_p=top_p, repetition_penalty=repetition_penalty, seed=seed,
                   num_samples=num_samples, stop=stop)


def _stack_token_batches(model: Stack, device: torch.device | str) -> TokenBatches:
    device = torch.device(device)
    windowed = model.config.windowed
    dtype = next(model.parameters()).dtype

    @torch.inference_mode()
    def forward(windows: list[list[int]], past: Any) -> tuple[np.ndarray, Any]:
        if windowed:  # past: the ids each row has already read in this window
            contexts = [[*p, *w] for p, w in zip(past or [[] for _ in windows], windows, strict=True)]
            logits, _, _ = model(torch.tensor(contexts, dtype=torch.long, device=device))
            return logits[:, -1].float().cpu().numpy(), contexts
        idx = torch.tensor(windows, dtype=torch.long, device=device)
        logits, _, state = model(idx, state=past)
        return logits[:, -1].float().cpu().numpy(), state

    def run(ids: list[int], settings: list[SamplingSettings], seeds: list[int | None],
            max_new_tokens: int) -> Iterator[list[int]]:
        batch = len(settings)
        block = decode_window(windowed, model.config.block_size, len(ids), max_new_tokens)
        return decode_batch(ids, block_size=block, forward=forward,
                            empty_past=(lambda: None) if windowed
                            else (lambda: model.empty_state(batch, device, dtype)),
                            settings=settings, seeds=seeds, max_new_tokens=max_new_tokens)

    return run


BATCH = 256  # sentences per generator call; the noise is drawn for all of them first


@torch.inference_mode()
def gan_sentences(generator: Generator, tokenizer: WordTokenizer, count: int,
                  seed: int | None = None, device: torch.device | str = "cpu",
                  temperature: float = 1.0) -> list[str]:
    """`count` sentences as text, the words drawn at `temperature` (checked as the runtime
    checks it); the same seed and temperature give the runtime's sentences."""
    t = SamplingSettings(temperature=temperature).temperature
    if generator.config.token_choice == "argmax" and t != 1.0:
        raise SamplingError("this generator picks every word by argmax (--token-choice argmax) "
                            "and takes no --temperature; leave it out")
    noise = draw_noise(generator.config.to_dict(), count, np.random.default_rng(seed))
    generator = generator.eval().to(device)
    sentences: list[str] = []
    for start in range(0, count, BATCH):
        chunk = {name: torch.from_numpy(array[start : start + BATCH]).to(device)
                 for name, array in noise.items()}
        ids, _ = generator(**chunk, temperature=torch.tensor(t, device=device))
        sentences += [tokenizer.decode(row) for row in ids.cpu().tolist()]
    return sentences
