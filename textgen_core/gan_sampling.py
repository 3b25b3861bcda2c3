"""Torch-side sentences from a GAN generator, with the runtime's noise: numpy draws it exactly as
`runtime.chat --model gan.onnx` does (runtime/gan_model.py), so the same seed gives the same
sentences from the checkpoint, the ONNX file and the TorchScript file."""

from __future__ import annotations

import numpy as np
import torch

from runtime.gan_model import draw_noise
from runtime.word_tokenizer import WordTokenizer
from textgen_core.models.gan import Generator

BATCH = 256  # sentences per generator call; the noise is drawn for all of them first


@torch.inference_mode()
def gan_sentences(generator: Generator, tokenizer: WordTokenizer, count: int,
                  seed: int | None = None, device: torch.device | str = "cpu") -> list[str]:
    """`count` sentences as text; the same seed gives the runtime's sentences."""
    noise = draw_noise(generator.config.to_dict(), count, np.random.default_rng(seed))
    generator = generator.eval().to(device)
    sentences: list[str] = []
    for start in range(0, count, BATCH):
        chunk = {name: torch.from_numpy(array[start : start + BATCH]).to(device)
                 for name, array in noise.items()}
        ids, _ = generator(**chunk)
        sentences += [tokenizer.decode(row) for row in ids.cpu().tolist()]
    return sentences
