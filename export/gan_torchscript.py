"""GAN generator → TorchScript: `forward(global_noise, step_noise, block_noise[, uniform]) ->
(token_ids, probs)`, the same interface as the ONNX file (export/gan_onnx.py).

TorchScript files run code when loaded; they are for PyTorch deployments that trust the file.
The vocabulary and config ride along as `_extra_files`.
"""

from __future__ import annotations

from pathlib import Path

import torch

from export.gan_onnx import _Sampler, input_names, parity_noise
from export.torchscript_file import extra_files, load_traced, save_traced
from runtime.word_tokenizer import WordTokenizer
from textgen_core.models.gan import Generator, draw_noise


def export_gan_torchscript(generator: Generator, tokenizer: WordTokenizer, path: str | Path) -> Path:
    path = Path(path)
    generator = generator.float().eval().cpu()
    names = input_names(generator)
    example = draw_noise(generator.config, 2, torch.Generator().manual_seed(0))
    extra = extra_files("gan", tokenizer.to_dict(), generator.config.to_dict())
    with torch.no_grad():  # the S-step sampling loop is traced without autograd, as before
        return save_traced(_Sampler(generator), tuple(example[n] for n in names), path, extra)


def gan_torchscript_parity(generator: Generator, ts_path: str | Path, seed: int = 0) -> tuple[float, float]:
    """(max |Δprobs|, fraction of differing token ids) on a batch of 3 noise draws."""
    noise = parity_noise(generator, 3, seed)
    names = input_names(generator)
    loaded = load_traced(ts_path)
    with torch.inference_mode():
        ids, probs = generator.eval()(**noise)
        got_ids, got_probs = loaded(*(noise[n] for n in names))
    return float((got_probs - probs).abs().max()), float((got_ids != ids).float().mean())
