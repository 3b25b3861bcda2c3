"""Sample sentences from an exported GAN generator with numpy + onnxruntime.

The file is held to the same checks as a GPT file (runtime/onnx_file.py: structure scan,
external data and custom domains refused, textgen header, checksum, operators), with every size
of its config bounded (runtime/model_limits.py), then to the GAN contract:
inputs `global_noise`, `step_noise`, `block_noise` (and `uniform` when the model samples its
words), outputs `token_ids` [batch, S] int64 and `probs` [batch, S, V] float32. The noise is drawn
here with numpy, from the distribution the model was trained with.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from runtime.errors import SamplingError
from runtime.model_limits import activation_bytes, bounded_size, check_memory
from runtime.onnx_file import FLOAT, INT64, Port, basic_session_options, check_io, fail, read_textgen_onnx
from runtime.onnx_file import model_kind as model_kind  # runtime/chat.py imports it from here
from runtime.word_tokenizer import WordTokenizer

TRUNCATION = 1.5  # textgen_core.models.gan.TRUNCATION


def draw_noise(config: dict[str, Any], batch: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """The generator's random inputs for `batch` sentences (float32)."""
    S, E, B = config["seq_len"], config["n_embd"], config["n_noise_blocks"]
    shapes = {"global_noise": (batch, S) if config.get("noise_1d") else (batch, S, E),
              "step_noise": (batch, S, E), "block_noise": (batch, B, S, E)}
    dist = config.get("noise_dist", "normal")
    noise = {}
    for name, shape in shapes.items():
        if dist == "uniform":
            noise[name] = rng.uniform(-1.0, 1.0, size=shape)
        elif dist == "truncated":
            values = rng.standard_normal(shape)
            outside = np.abs(values) > TRUNCATION
            while outside.any():  # redraw until every value lies within ±TRUNCATION
                values[outside] = rng.standard_normal(int(outside.sum()))
                outside = np.abs(values) > TRUNCATION
            noise[name] = values
        else:
            noise[name] = rng.standard_normal(shape)
    if config.get("token_choice", "sample") == "sample":
        noise["uniform"] = rng.random((batch, S))
    return {k: v.astype(np.float32) for k, v in noise.items()}


class GANSampler:
    """A checked GAN ONNX model; `sample(n, seed)` returns n sentences as text."""

    kind = "gan"

    def __init__(self, path: str | Path, threads: int | None = None) -> None:
        self.path = Path(path)
        checked = read_textgen_onnx(self.path, "gan", "not a GAN")
        tokenizer, self.config = checked.tokenizer, checked.config
        if not isinstance(tokenizer, WordTokenizer):
            raise fail(self.path, "a GAN file must carry a word vocabulary")
        self.tokenizer: WordTokenizer = tokenizer
        checked.verify_checksum()
        S, E, B, V = (bounded_size(self.path, self.config, key, "GAN config")
                      for key in ("seq_len", "n_embd", "n_noise_blocks", "vocab_size"))
        if tokenizer.vocab_size != V:
            raise fail(self.path, f"the vocabulary has {tokenizer.vocab_size} words but the model "
                                  f"{V}")
        # per sentence: the noise (B + 2 planes of S x E) and the probabilities
        check_memory(self.path, activation_bytes(context=S, width=E * (B + 2), vocab=V, heads=1))
        self.session = checked.session(basic_session_options(threads))
        self._check_io()

    @property
    def seq_len(self) -> int:
        return int(self.config["seq_len"])

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.vocab_size

    def _check_io(self) -> None:
        inputs = {name: Port(FLOAT, array.ndim)
                  for name, array in draw_noise(self.config, 1, np.random.default_rng(0)).items()}
        outputs = {"token_ids": Port(INT64, 2), "probs": Port(FLOAT, 3)}
        check_io(self.path, self.session, "textgen GAN contract", inputs, outputs)
        probs = next(o for o in self.session.get_outputs() if o.name == "probs")
        if isinstance(probs.shape[2], int) and probs.shape[2] != self.vocab_size:
            raise fail(self.path, f"output probs has {probs.shape[2]} words, the vocabulary "
                                  f"{self.vocab_size}")

    def run(self, noise: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """(token_ids [N, S], probs [N, S, V]) for explicit noise (see `draw_noise`)."""
        token_ids, probs = self.session.run(["token_ids", "probs"], noise)
        return token_ids, probs

    def sample_ids(self, count: int, seed: int | None = None) -> np.ndarray:
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            raise SamplingError(f"--num-samples must be a positive integer, got {count!r}")
        rng = np.random.default_rng(seed)
        return self.run(draw_noise(self.config, count, rng))[0]

    def sample(self, count: int, seed: int | None = None) -> list[str]:
        """`count` sentences as text; the same seed gives the same sentences."""
        return [self.tokenizer.decode(row) for row in self.sample_ids(count, seed)]
