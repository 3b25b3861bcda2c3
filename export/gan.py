"""The GAN's exports: its generator's ONNX and TorchScript files, and the TorchScript file's sampler.

`python -m export onnx|torchscript GAN.pt`: the GAN generator's files, parity-checked.

GAN generator → ONNX: noise in, token ids and probabilities out, all S steps in one graph.

Inputs (float32; `batch` dynamic):
    global_noise [batch, S, E] (or [batch, S] with the 1-d noise), step_noise [batch, S, E],
    block_noise [batch, B, S, E], and uniform [batch, S] in [0, 1) when words are sampled, with
    temperature [] (scalar): an input that is also an initializer holding 1.0, so a caller that
    does not feed it (an older runtime, the web page) samples at temperature 1
Outputs: token_ids [batch, S] int64 (`<end>` = 0 closes a sentence), probs [batch, S, V] float32

The S-step loop is unrolled at export by tracing (S is fixed per model). The vocabulary, model config and
format version ride in metadata_props (`textgen.kind` = `gan`), with the whole-file checksum.

GAN generator → TorchScript: `forward(global_noise, step_noise, block_noise[, uniform,
temperature]) -> (token_ids, probs)`, the same interface as the ONNX file (the temperature is
required there).

TorchScript files run code when loaded; they are for PyTorch deployments that trust the file.
The vocabulary and config ride along as `_extra_files`.

The TorchScript file is sampled like the ONNX file:
`TorchScriptGAN` has `GANSampler`'s API (`run(noise, temperature)`, `sample(n, seed,
temperature)`, the config and the vocabulary) and shares its noise drawing (numpy,
runtime/gan.py) and its sentence code, so the same seed and temperature give the same sentences
from either file.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnx import numpy_helper
from torch import Tensor, nn

from export.errors import ExportError
from export.onnx_file import OPSET, save_textgen_onnx
from export.parity import FP32_TOLERANCE, require_parity
from export.staging import file_size, staged
from export.torchscript_file import TorchScriptFile, extra_files, load_traced, save_traced
from runtime import gan as runtime_gan
from runtime.contract import GAN_OUTPUTS, TEMPERATURE, UNIFORM
from runtime.errors import ModelFileError
from runtime.gan import GANSampler
from runtime.model_limits import bounded_size
from runtime.sampler import GREEDY_BELOW
from runtime.word_tokenizer import WordTokenizer
from textgen_core.models.gan import Generator, draw_noise, gan_from_checkpoint, noise_shapes


def export_gan_checkpoint(payload: dict[str, Any], checkpoint: str, fmt: str, out: str | None,
                          quantize: str | None, report: Callable[[str], None]) -> list[Path]:
    if quantize:
        raise ExportError(f"--quantize {quantize} is available for GPT models only; export the GAN "
                          "without it")
    gan, tokenizer = gan_from_checkpoint(payload)
    generator = gan.generator
    ckpt = Path(checkpoint)
    suffix = ".onnx" if fmt == "onnx" else ".ts"
    target = Path(out) if out else ckpt.with_suffix(suffix)
    with staged(target) as staging:
        if fmt == "onnx":
            export_gan_onnx(generator, tokenizer, staging)
            worst, ids_differ = gan_onnx_parity(generator, staging)
        else:
            export_gan_torchscript(generator, tokenizer, staging)
            worst, ids_differ = gan_torchscript_parity(generator, staging)
        require_parity(worst if ids_differ == 0 else float("inf"), target)
    report(f"wrote {target} ({file_size(target)})")
    report(f"  GAN generator, {generator.config.seq_len} steps in the graph: max |Δprobs| vs torch "
           f"{worst:.2e} (limit {FP32_TOLERANCE:.0e}), token ids identical on 3 noise draws")
    return [target]


OUTPUT_NAMES = list(GAN_OUTPUTS)


class _Sampler(nn.Module):
    """The generator with its random inputs as positional tensors, as ONNX wants them."""

    def __init__(self, generator: Generator) -> None:
        super().__init__()
        self.generator = generator

    def forward(self, global_noise: Tensor, step_noise: Tensor, block_noise: Tensor,
                uniform: Tensor | None = None, temperature: Tensor | None = None
                ) -> tuple[Tensor, Tensor]:
        return self.generator(global_noise, step_noise, block_noise, uniform, temperature)


def input_names(generator: Generator) -> list[str]:
    """The graph's inputs in positional order: the noise, then the temperature of a sampler."""
    names = list(noise_shapes(generator.config, 1))
    return [*names, TEMPERATURE] if UNIFORM in names else names


def example_inputs(generator: Generator, temperature: float = 1.0, batch: int = 2,
                   seed: int = 0) -> dict[str, Tensor]:
    """Noise for `batch` sentences and, for a sampling generator, the 0-d temperature tensor."""
    inputs = draw_noise(generator.config, batch, torch.Generator().manual_seed(seed))
    if UNIFORM in inputs:
        inputs[TEMPERATURE] = torch.tensor(temperature, dtype=torch.float32)
    return inputs


def default_temperature(proto: onnx.ModelProto) -> onnx.ModelProto:
    """Give the `temperature` input the initializer 1.0: ONNX lets an initializer that is also a
    graph input be overridden by a feed, so the input becomes optional with that default."""
    if any(i.name == TEMPERATURE for i in proto.graph.input):
        proto.graph.initializer.append(
            numpy_helper.from_array(np.array(1.0, dtype=np.float32), TEMPERATURE))
    return proto


def export_gan_onnx(generator: Generator, tokenizer: WordTokenizer, path: str | Path) -> Path:
    path = Path(path)
    generator = generator.float().eval().cpu()
    names = input_names(generator)
    example = example_inputs(generator)
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        # The TorchScript-based exporter: it records the unrolled S-step loop in seconds, where
        # the dynamo exporter needs minutes; it warns that it is the older path, as intended.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            _Sampler(generator), tuple(example[n] for n in names), buffer, input_names=names,
            output_names=OUTPUT_NAMES,
            dynamic_axes={n: {0: "batch"} for n in names + OUTPUT_NAMES if n != TEMPERATURE},
            opset_version=OPSET, dynamo=False,
        )
    proto = default_temperature(onnx.load_from_string(buffer.getvalue()))
    return save_textgen_onnx(proto, path, kind="gan", tokenizer=tokenizer.to_dict(),
                             model_config=generator.config.to_dict())


BOUNDARY_MARGIN = 1e-5


def parity_noise(generator: Generator, batch: int, seed: int,
                 temperature: float = 1.0) -> dict[str, Tensor]:
    """Noise (and the temperature) for a parity check, with every uniform at least
    BOUNDARY_MARGIN away from the cumulative-probability boundaries of its step, at `temperature`.

    Two correct implementations sum V float32 probabilities in different orders, so their
    cumulative sums differ by ~1e-6; a uniform that lands that close to a boundary picks the
    neighbouring word in one of them and every later step differs. Such a draw is moved to the
    middle of its step's likeliest word, so that parity measures the graph, not one rounding.
    """
    noise = example_inputs(generator, temperature, batch, seed)
    if UNIFORM not in noise or temperature < GREEDY_BELOW:
        return noise
    with torch.inference_mode():
        for t in range(generator.config.seq_len):
            _, model_probs = generator.eval()(**noise)
            # the distribution the word is drawn from: softmax(log p / T), in float64
            probs = (model_probs[:, t].double().log() / temperature).softmax(-1)
            cdf = probs.cumsum(-1)
            u = noise[UNIFORM][:, t].double()
            margin = (cdf - u[:, None]).abs().min(-1).values
            for b in torch.nonzero(margin < BOUNDARY_MARGIN).flatten().tolist():
                k = int(probs[b].argmax())
                low = float(cdf[b, k - 1]) if k else 0.0
                noise[UNIFORM][b, t] = (low + float(cdf[b, k])) / 2
    return noise


def gan_onnx_parity(generator: Generator, onnx_path: str | Path, seed: int = 0,
                    temperature: float = 1.0) -> tuple[float, float]:
    """(max |Δprobs|, fraction of token ids that differ) between torch and onnxruntime on a batch
    of 3 noise draws (see `parity_noise`) at `temperature`."""
    noise = parity_noise(generator, 3, seed, temperature)
    with torch.inference_mode():
        ids, probs = generator.eval()(**noise)
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
    got_ids, got_probs = session.run(OUTPUT_NAMES, {k: v.numpy() for k, v in noise.items()})
    return (float(np.abs(got_probs - probs.numpy()).max()),
            float((got_ids != ids.numpy()).mean()))


def export_gan_torchscript(generator: Generator, tokenizer: WordTokenizer, path: str | Path) -> Path:
    path = Path(path)
    generator = generator.float().eval().cpu()
    names = input_names(generator)
    example = example_inputs(generator)
    extra = extra_files("gan", tokenizer.to_dict(), generator.config.to_dict())
    with torch.no_grad():  # the S-step sampling loop is traced without autograd, as before
        return save_traced(_Sampler(generator), tuple(example[n] for n in names), path, extra)


def gan_torchscript_parity(generator: Generator, ts_path: str | Path, seed: int = 0,
                           temperature: float = 1.0) -> tuple[float, float]:
    """(max |Δprobs|, fraction of differing token ids) on a batch of 3 noise draws at `temperature`."""
    noise = parity_noise(generator, 3, seed, temperature)
    names = input_names(generator)
    loaded = load_traced(ts_path)
    with torch.inference_mode():
        ids, probs = generator.eval()(**noise)
        got_ids, got_probs = loaded(*(noise[n] for n in names))
    return float((got_probs - probs).abs().max()), float((got_ids != ids).float().mean())


class TorchScriptGAN:
    """A trusted GAN TorchScript file: `forward(global_noise, step_noise, block_noise[, uniform,
    temperature]) -> (token_ids, probs)` (files traced before issue 31 take no temperature)."""

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
        # The file's positional inputs, in the order draw_noise makes them (export/gan.py).
        self._inputs = list(runtime_gan.draw_noise(self.config, 1, np.random.default_rng(0)))
        arguments = [a.name for a in self.module.forward.schema.arguments]
        self.takes_temperature = TEMPERATURE in arguments

    @property
    def seq_len(self) -> int:
        return int(self.config["seq_len"])

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.vocab_size

    def run(self, noise: dict[str, np.ndarray], temperature: float = 1.0
            ) -> tuple[np.ndarray, np.ndarray]:
        """(token_ids [N, S], probs [N, S, V]) for explicit noise (see `draw_noise`), the words
        drawn at `temperature`."""
        inputs = [torch.from_numpy(noise[name]) for name in self._inputs]
        t = runtime_gan.check_temperature(self, temperature)
        if self.takes_temperature:
            inputs.append(torch.tensor(t, dtype=torch.float32))
        with torch.inference_mode():
            token_ids, probs = self.module(*inputs)
        return token_ids.numpy(), probs.float().numpy()

    # The ONNX sampler's own code on top of `run`: the same noise stream, the same sentences.
    sample_ids = GANSampler.sample_ids
    sample = GANSampler.sample
