"""`python -m export onnx|torchscript CKPT`: write the file, prove parity, report.

Each file is written under a temporary name beside the target and moved into place only after
its parity check passed (export/staging.py), so a failed export never leaves a bad file under the
final name.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import numpy as np
import torch

from export.errors import ExportError
from export.onnx_export import export_gpt_onnx
from export.parity import FP32_TOLERANCE, onnx_parity, require_parity
from export.quantize import quantization_cost, quantize_int8
from export.staging import file_size, staged, write_logits_file
from export.stateful_parity import stateful_onnx_parity
from export.torchscript_export import export_gpt_torchscript, torchscript_parity
from runtime.errors import TextgenError
from runtime.tokenizer import CharTokenizer
from runtime.window import roll_limit
from textgen_core.models.gpt import GPT
from textgen_core.models.loading import gpt_from_checkpoint
from textgen_core.training.checkpoint import load_checkpoint

SUPPORTED_KINDS = ("gpt", "gan", "stack")
EVAL_TOKENS = 1024


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m export",
                                     description="Export a textgen checkpoint.")
    sub = parser.add_subparsers(dest="format", required=True, metavar="{onnx,torchscript}")
    onnx = sub.add_parser("onnx", help="ONNX with a key/value cache (for runtime/)")
    onnx.add_argument("checkpoint")
    onnx.add_argument("-o", "--output", help="default: <checkpoint stem>.onnx beside it")
    onnx.add_argument("--quantize", choices=["int8"], help="also write a dynamically quantized file")
    onnx.add_argument("--eval-text", help="text to measure the int8 loss cost on "
                                          "(default: 1024 tokens sampled from the model)")
    ts = sub.add_parser("torchscript", help="TorchScript, forward(input_ids) -> logits")
    ts.add_argument("checkpoint")
    ts.add_argument("-o", "--output", help="default: <checkpoint stem>.ts beside it")
    return parser


def _load(path: str) -> tuple[GPT, CharTokenizer]:
    payload = load_checkpoint(path)
    if payload["kind"] not in SUPPORTED_KINDS:
        raise ExportError(f"{path} holds a {payload['kind']!r} model; export supports: "
                          f"{', '.join(SUPPORTED_KINDS)}")
    return gpt_from_checkpoint(payload)


def _eval_tokens(model: GPT, tokenizer: CharTokenizer, eval_text: str | None) -> np.ndarray:
    if eval_text:
        try:
            text = Path(eval_text).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ExportError(f"cannot read --eval-text {eval_text}: {exc}") from None
        ids = tokenizer.encode(text[: 50 * EVAL_TOKENS])
        if len(ids) < 2:
            raise ExportError(f"--eval-text {eval_text} is too short")
        return np.asarray(ids, dtype=np.int64)
    from textgen_core.sampling import generate  # in-distribution text: the model's own samples

    text = "".join(generate(model, tokenizer, "", max_new_tokens=EVAL_TOKENS, temperature=1.0, seed=0))
    return np.asarray(tokenizer.encode(text), dtype=np.int64)


def export_checkpoint(checkpoint: str, fmt: str, out: str | None = None,
                      quantize: str | None = None, eval_text: str | None = None,
                      report=print) -> list[Path]:
    """Export `checkpoint`; returns the files written. `report` receives one line per fact."""
    payload = load_checkpoint(checkpoint)
    if payload["kind"] == "gan":  # the GAN generator: export/gan_export.py
        from export.gan_export import export_gan_checkpoint

        return export_gan_checkpoint(payload, checkpoint, fmt, out, quantize, report)
    if payload["kind"] == "stack":  # the layer stack: export/stack_export.py
        from export.stack_export import export_stack_checkpoint

        return export_stack_checkpoint(payload, checkpoint, fmt, out, quantize, report)
    model, tokenizer = _load(checkpoint)
    ckpt = Path(checkpoint)
    written = []
    if fmt == "onnx":
        target = Path(out) if out else ckpt.with_suffix(".onnx")
        with staged(target) as staging:
            export_gpt_onnx(model, tokenizer, staging)
            parity = onnx_parity(model, staging)
            require_parity(parity.worst, target)
            state_diff = None
            if model.config.yoke_state_size:
                state_diff = stateful_onnx_parity(model, staging)
                require_parity(state_diff, target)
        written.append(target)
        report(f"wrote {target} ({file_size(target)})")
        report(f"  max |Δlogits| vs torch: {parity.max_abs_diff_no_past:.2e} without past, "
               f"{parity.max_abs_diff_with_past:.2e} with past, {parity.max_abs_diff_batch:.2e} "
               f"batch of 2 (limit {FP32_TOLERANCE:.0e})")
        if model.config.rotary:
            report(f"  rotary positions {roll_limit(model.config.block_size)}+ (a rolled cache): "
                   f"{parity.max_abs_diff_far_positions:.2e}")
        if state_diff is not None:
            report(f"  stateful yoke: max |Δ| of logits and yoke_state_out with a nonzero "
                   f"yoke_state {state_diff:.2e}")
        if quantize == "int8":
            int8 = target.with_suffix(".int8.onnx")
            with staged(int8) as staging:
                quantize_int8(target, staging)
            written.append(int8)
            cost = quantization_cost(model, target, int8, _eval_tokens(model, tokenizer, eval_text))
            ratio = int8.stat().st_size / target.stat().st_size
            report(f"wrote {int8} ({file_size(int8)}, {ratio:.2f}x the fp32 file)")
            report(f"  max |Δlogits| vs torch {cost.max_abs_diff:.3g}, top-1 agreement with fp32 "
                   f"{cost.top1_agreement:.1%}, loss fp32 {cost.loss_fp32:.4f} -> int8 "
                   f"{cost.loss_int8:.4f} ({cost.loss_int8 - cost.loss_fp32:+.4f}) on "
                   f"{cost.eval_tokens:,} tokens")
    else:
        target = Path(out) if out else ckpt.with_suffix(".ts")
        write_logits_file(target, lambda staging: export_gpt_torchscript(model, tokenizer, staging),
                          lambda staging: torchscript_parity(model, staging), report)
        written.append(target)
    return written


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # The exporter logs a line per optional torchvision operator it cannot find; irrelevant here.
    logging.getLogger("torch.onnx._internal.exporter._registration").setLevel(logging.ERROR)
    try:
        with torch.no_grad():
            export_checkpoint(args.checkpoint, args.format, args.output,
                              getattr(args, "quantize", None), getattr(args, "eval_text", None),
                              report=lambda line: print(line, flush=True))
    except TextgenError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0
