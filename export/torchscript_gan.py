"""A GAN generator's TorchScript file (export/gan_torchscript.py), sampled like the ONNX file:
`TorchScriptGAN` has `GANSampler`'s API (`run(noise)`, `sample(n, seed)`, the config and the
vocabulary) and shares its noise drawing (numpy, runtime/gan_model.py) and its sentence code, so
the same seed gives the same sentences from either file.
"""

from __future__ import annotations

import numpy as np
import torch

from export.torchscript_file import TorchScriptFile
from runtime.errors import ModelFileError
from runtime.gan_model import GANSampler, draw_noise
from runtime.model_limits import bounded_size
from runtime.word_tokenizer import WordTokenizer


class TorchScriptGAN:
    """A trusted GAN TorchScript file: `forward(global_noise, step_noise, block_noise[, uniform])
    -> (token_ids, probs)`."""

    kind = "gan"

    def __init__(self, loaded: TorchScriptFile) -> None:
        self.path = loaded.path
        self.module = loaded.module
        self.config = loaded.config
        if not isinstance(loaded.tokenizer, WordTokenizer):
            raise ModelFileError(f"{self.path}: a GAN file must carry a word vocabulary")
        self.tokenizer: WordTokenizer = loaded.tokenizer
        for key in ("seq_len", "n_embd", "n_noise_blocks"):
            bounded_size(self.path, self.config, key, "GAN config")
        vocab = bounded_size(self.path, self.config, "vocab_size", "GAN config")
        if self.tokenizer.vocab_size != vocab:
            raise ModelFileError(f"{self.path}: the vocabulary has {self.tokenizer.vocab_size} "
                                 f"words but the model {vocab}")
        # The file's positional inputs, in the order draw_noise makes them (export/gan_onnx.py).
        self._inputs = list(draw_noise(self.config, 1, np.random.default_rng(0)))

    @property
    def seq_len(self) -> int:
        return int(self.config["seq_len"])

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.vocab_size

    def run(self, noise: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """(token_ids [N, S], probs [N, S, V]) for explicit noise (see `draw_noise`)."""
        with torch.inference_mode():
            token_ids, probs = self.module(*(torch.from_numpy(noise[name]) for name in self._inputs))
        return token_ids.numpy(), probs.float().numpy()

    # The ONNX sampler's own code on top of `run`: the same noise stream, the same sentences.
    sample_ids = GANSampler.sample_ids
    sample = GANSampler.sample
