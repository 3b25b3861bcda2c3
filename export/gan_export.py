"""`python -m export onnx|torchscript GAN.pt`: the GAN generator's files, parity-checked."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from export.errors import ExportError
from export.gan_onnx import export_gan_onnx, gan_onnx_parity
from export.gan_torchscript import export_gan_torchscript, gan_torchscript_parity
from export.parity import FP32_TOLERANCE, require_parity
from export.staging import file_size, staged
from textgen_core.models.gan_loading import gan_from_checkpoint


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
