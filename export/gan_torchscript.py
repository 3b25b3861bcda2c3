"""GAN generator → TorchScript: `forward(global_noise, step_noise, block_noise[, uniform]) ->
(token_ids, probs)`, the same interface as the ONNX file (export/gan_onnx.py).

TorchScript files run code when loaded; they are for PyTorch deployments that trust the file.
The vocabulary and config ride along as `_extra_files`.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import torch

from export.gan_onnx import _Sampler, input_names, parity_noise
from export.metadata import ONNX_FORMAT_VERSION
from export.torchscript_export import TORCHSCRIPT_FORMAT
from runtime.word_tokenizer import WordTokenizer
from textgen_core.models.gan import Generator, draw_noise


def export_gan_torchscript(generator: Generator, tokenizer: WordTokenizer, path: str | Path) -> Path:
    path = Path(path)
    generator = generator.float().eval().cpu()
    names = input_names(generator)
    example = draw_noise(generator.config, 2, torch.Generator().manual_seed(0))
    header = {"format": TORCHSCRIPT_FORMAT, "version": ONNX_FORMAT_VERSION, "kind": "gan"}
    extra = {"textgen.json": json.dumps(header),
             "tokenizer.json": json.dumps(tokenizer.to_dict(), ensure_ascii=False),
             "model_config.json": json.dumps(generator.config.to_dict())}
    with warnings.catch_warnings(), torch.no_grad():
        # torch.jit is deprecated in favour of torch.export, and tracing warns about Python ints
        # taken from shapes; both are expected here (the loop length S is fixed per model).
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(_Sampler(generator), tuple(example[n] for n in names), check_trace=False)
        torch.jit.save(traced, str(path), _extra_files=extra)
    return path


def gan_torchscript_parity(generator: Generator, ts_path: str | Path, seed: int = 0) -> tuple[float, float]:
    """(max |Δprobs|, fraction of differing token ids) on a batch of 3 noise draws."""
    noise = parity_noise(generator, 3, seed)
    names = input_names(generator)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loaded = torch.jit.load(str(ts_path))
    with torch.inference_mode():
        ids, probs = generator.eval()(**noise)
        got_ids, got_probs = loaded(*(noise[n] for n in names))
    return float((got_probs - probs).abs().max()), float((got_ids != ids).float().mean())
