"""GAN generator → ONNX: noise in, token ids and probabilities out, all S steps in one graph.

Inputs (float32; `batch` dynamic):
    global_noise [batch, S, E] (or [batch, S] with the 1-d noise), step_noise [batch, S, E],
    block_noise [batch, B, S, E], and uniform [batch, S] in [0, 1) when words are sampled
Outputs: token_ids [batch, S] int64 (`<end>` = 0 closes a sentence), probs [batch, S, V] float32

The S-step loop is unrolled at export by tracing (S is fixed per model). The vocabulary, model config and
format version ride in metadata_props (`textgen.kind` = `gan`), with the whole-file checksum.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch import Tensor, nn

from export.onnx_export import OPSET, save_textgen_onnx
from runtime.word_tokenizer import WordTokenizer
from textgen_core.models.gan import Generator, draw_noise, noise_shapes

OUTPUT_NAMES = ["token_ids", "probs"]


class _Sampler(nn.Module):
    """The generator with its random inputs as positional tensors, as ONNX wants them."""

    def __init__(self, generator: Generator) -> None:
        super().__init__()
        self.generator = generator

    def forward(self, global_noise: Tensor, step_noise: Tensor, block_noise: Tensor,
                uniform: Tensor | None = None) -> tuple[Tensor, Tensor]:
        return self.generator(global_noise, step_noise, block_noise, uniform)


def input_names(generator: Generator) -> list[str]:
    return list(noise_shapes(generator.config, 1))


def export_gan_onnx(generator: Generator, tokenizer: WordTokenizer, path: str | Path) -> Path:
    path = Path(path)
    generator = generator.float().eval().cpu()
    names = input_names(generator)
    example = draw_noise(generator.config, 2, torch.Generator().manual_seed(0))
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        # The TorchScript-based exporter: it records the unrolled S-step loop in seconds, where
        # the dynamo exporter needs minutes; it warns that it is the older path, as intended.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            _Sampler(generator), tuple(example[n] for n in names), buffer, input_names=names,
            output_names=OUTPUT_NAMES, dynamic_axes={n: {0: "batch"} for n in names + OUTPUT_NAMES},
            opset_version=OPSET, dynamo=False,
        )
    proto = onnx.load_from_string(buffer.getvalue())
    return save_textgen_onnx(proto, path, kind="gan", tokenizer=tokenizer.to_dict(),
                             model_config=generator.config.to_dict())


BOUNDARY_MARGIN = 1e-5


def parity_noise(generator: Generator, batch: int, seed: int) -> dict[str, Tensor]:
    """Noise for a parity check, with every uniform at least BOUNDARY_MARGIN away from the
    cumulative-probability boundaries of its step.

    Two correct implementations sum V float32 probabilities in different orders, so their
    cumulative sums differ by ~1e-6; a uniform that lands that close to a boundary picks the
    neighbouring word in one of them and every later step differs. Such a draw is moved to the
    middle of its step's likeliest word, so that parity measures the graph, not one rounding.
    """
    noise = draw_noise(generator.config, batch, torch.Generator().manual_seed(seed))
    if "uniform" not in noise:
        return noise
    with torch.inference_mode():
        for t in range(generator.config.seq_len):
            _, probs = generator.eval()(**noise)
            cdf = probs[:, t].double().cumsum(-1)
            u = noise["uniform"][:, t].double()
            margin = (cdf - u[:, None]).abs().min(-1).values
            for b in torch.nonzero(margin < BOUNDARY_MARGIN).flatten().tolist():
                k = int(probs[b, t].argmax())
                low = float(cdf[b, k - 1]) if k else 0.0
                noise["uniform"][b, t] = (low + float(cdf[b, k])) / 2
    return noise


def gan_onnx_parity(generator: Generator, onnx_path: str | Path, seed: int = 0) -> tuple[float, float]:
    """(max |Δprobs|, fraction of token ids that differ) between torch and onnxruntime on a batch
    of 3 noise draws (see `parity_noise`)."""
    noise = parity_noise(generator, 3, seed)
    with torch.inference_mode():
        ids, probs = generator.eval()(**noise)
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
    got_ids, got_probs = session.run(OUTPUT_NAMES, {k: v.numpy() for k, v in noise.items()})
    return (float(np.abs(got_probs - probs.numpy()).max()),
            float((got_ids != ids.numpy()).mean()))
