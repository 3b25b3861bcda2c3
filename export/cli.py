"""`python -m export onnx|genai|torchscript CKPT`: write the file, prove parity, report.

Each file is written under a temporary name beside the target and moved into place only after
its parity check passed (export/staging.py), so a failed export never leaves a bad file under the
final name.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from export.errors import ExportError
from export.gpt import export_gpt_onnx, export_gpt_torchscript, torchscript_parity
from export.parity import FP32_TOLERANCE, onnx_parity, require_parity
from export.quantize import QUANTIZATIONS, quantization_cost, quantize
from export.staging import file_size, staged, write_logits_file
from export.stateful_parity import stateful_onnx_parity
from runtime.command_line import Parser
from runtime.contract import KINDS
from runtime.errors import TextgenError
from runtime.file_kind import TAKES_CHECKPOINT, TAKES_TEXT, explained, wrong_kind
from runtime.regular_file import read_regular_text
from runtime.terminal_text import print_error, sanitize
from runtime.tokenizer import CharTokenizer
from runtime.window import roll_limit
from textgen_core.models.gpt import GPT, gpt_from_checkpoint
from textgen_core.training.checkpoint import load_checkpoint

SUPPORTED_KINDS = KINDS
EVAL_TOKENS = 1024
CHECKPOINT_HELP = "a checkpoint written by textgen_core.train"
EVAL_TEXT_LIMIT = 64 << 20  # bytes of --eval-text; only its first 50 x EVAL_TOKENS characters are used


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="python -m export",
                    description="Export a textgen checkpoint.")
    sub = parser.add_subparsers(dest="format", required=True, metavar="{onnx,genai,torchscript,web}")
    onnx = sub.add_parser("onnx", help="ONNX with a key/value cache (for runtime/)")
    onnx.add_argument("checkpoint", metavar="CHECKPOINT.pt", help=CHECKPOINT_HELP)
    onnx.add_argument("-o", "--output", metavar="FILE.onnx", help="default: <checkpoint stem>.onnx beside it")
    onnx.add_argument("--quantize", choices=QUANTIZATIONS,
                      help="also write a quantized file: int8 (dynamic) or int4 (MatMulNBits)")
    onnx.add_argument("--eval-text", metavar="FILE.txt",
                      help="text to measure the quantization's loss cost on "
                           "(default: 1024 tokens sampled from the model)")
    genai = sub.add_parser(
        "genai", help="an onnxruntime-genai model folder (model.onnx, genai_config.json, "
                      "tokenizer.json)",
        description="The folder onnxruntime-genai opens as it is: og.Model(DIR). See "
                    "export/genai.py for how its graph relates to the onnx export's.")
    genai.add_argument("checkpoint", metavar="CHECKPOINT.pt", help=CHECKPOINT_HELP)
    genai.add_argument("-o", "--output", metavar="FOLDER", help="default: <checkpoint stem>-genai/ beside it")
    genai.add_argument("--quantize", choices=QUANTIZATIONS,
                       help="write the quantized graph as model.onnx (int4: what "
                            "onnxruntime-genai's builder writes for -p int4)")
    genai.add_argument("--eval-text", metavar="FILE.txt",
                       help="text to measure the quantization's loss cost on "
                            "(default: 1024 tokens sampled from the model)")
    ts = sub.add_parser(
        "torchscript", help="TorchScript (runs code when loaded: for PyTorch deployments that trust it)",
        description="The interface depends on the kind. gpt: forward(input_ids [b, s]) -> logits "
                    "[b, s, V]; a stateful yoke: forward(input_ids, yoke_state [b, H]) -> (logits, "
                    "yoke_state_out [b, s, H]). stack: forward(input_ids, *state) -> (logits, "
                    "*next_state), no state without RNN/LSTM layers. gan: forward(global_noise, "
                    "step_noise, block_noise[, uniform]) -> (token_ids, probs), as its ONNX file.")
    ts.add_argument("checkpoint", metavar="CHECKPOINT.pt", help=CHECKPOINT_HELP)
    ts.add_argument("-o", "--output", metavar="FILE.ts", help="default: <checkpoint stem>.ts beside it")
    web = sub.add_parser(
        "web", help="a static web page that samples the model in the browser (onnxruntime-web)",
        description="A folder any static file server hosts: index.html, the model, its tokenizer "
                    "and settings, our scripts and onnxruntime-web's WebAssembly files (fetched once "
                    "with npm, or from TEXTGEN_ONNXRUNTIME_WEB). See export/web.py.")
    web.add_argument("checkpoint", metavar="CHECKPOINT.pt", help=CHECKPOINT_HELP)
    web.add_argument("-o", "--output", metavar="FOLDER", help="default: <checkpoint stem>-web/ beside it")
    for command in (onnx, genai, ts, web):
        command.add_argument("--overwrite", action="store_true",
                             help="allow --output to replace an existing file or folder")
    return parser


def check_output(args: argparse.Namespace) -> None:
    """An explicit --output that exists is replaced only with --overwrite, as training's --out
    is; the checkpoint being read is never replaced."""
    if args.output is None:
        return
    target = Path(args.output)
    if target.resolve() == Path(args.checkpoint).resolve():
        raise ExportError(f"--output {target} is the checkpoint being exported; write the export "
                          "to another file")
    if args.overwrite:
        return
    targets = [target]
    if args.format == "onnx" and getattr(args, "quantize", None):
        targets.append(target.with_suffix(f".{args.quantize}.onnx"))
    for path in targets:
        if path.exists() or path.is_symlink():
            raise ExportError(f"{path} exists; pass --overwrite to replace it, or choose another --output")


def _load(path: str) -> tuple[GPT, CharTokenizer]:
    payload = load_checkpoint(path)
    if payload["kind"] not in SUPPORTED_KINDS:
        raise ExportError(f"{path} holds a {payload['kind']!r} model; export supports: "
                          f"{', '.join(SUPPORTED_KINDS)}")
    return gpt_from_checkpoint(payload)


def _eval_tokens(model: GPT, tokenizer: CharTokenizer, eval_text: str | None) -> np.ndarray:
    if eval_text:
        problem = wrong_kind(eval_text, TAKES_TEXT)
        if problem is not None:
            raise ExportError(f"--eval-text: {problem}")
        try:
            text = read_regular_text(eval_text, EVAL_TEXT_LIMIT)
        except UnicodeDecodeError as exc:
            raise ExportError(f"cannot read --eval-text {eval_text}: {exc}") from None
        except OSError as exc:
            raise ExportError(f"cannot read --eval-text {eval_text}: {exc.strerror or exc}") from None
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
    if fmt == "web":  # the page's folder, its model exported as for `onnx`: export/web.py
        from export.web import write_web_folder

        return write_web_folder(checkpoint, out, report)
    with explained((checkpoint, TAKES_CHECKPOINT)):
        payload = load_checkpoint(checkpoint)
    if fmt == "genai" and payload["kind"] != "gpt":
        raise ExportError(f"{checkpoint} holds a {payload['kind']!r} model; onnxruntime-genai "
                          "runs decoder-only GPTs only (export it with `python -m export onnx`)")
    if payload["kind"] == "gan":  # the GAN generator: export/gan.py
        from export.gan import export_gan_checkpoint

        return export_gan_checkpoint(payload, checkpoint, fmt, out, quantize, report)
    if payload["kind"] == "stack":  # the layer stack: export/stack.py
        from export.stack import export_stack_checkpoint

        return export_stack_checkpoint(payload, checkpoint, fmt, out, quantize, report)
    model, tokenizer = _load(checkpoint)
    ckpt = Path(checkpoint)
    written = []
    if fmt == "onnx":
        target = Path(out) if out else ckpt.with_suffix(".onnx")
        written.append(_write_onnx(model, tokenizer, target, report))
        if quantize:
            written.append(_write_quantized(model, tokenizer, target, quantize, eval_text, report))
    elif fmt == "genai":
        from export.genai import require_genai_support, write_genai_folder

        require_genai_support(model.config, tokenizer)
        folder = Path(out) if out else ckpt.with_name(f"{ckpt.stem}-genai")
        try:
            folder.parent.mkdir(parents=True, exist_ok=True)
            work = tempfile.TemporaryDirectory(dir=folder.parent, prefix=f".{folder.name}.")
        except OSError as exc:
            raise ExportError(f"cannot write beside {folder}: {exc.strerror or exc}") from None
        with work as tmp:  # the checked graphs, before their interface is changed
            graph = _write_onnx(model, tokenizer, Path(tmp) / "model.onnx", lambda line: None)
            if quantize:
                graph = _write_quantized(model, tokenizer, graph, quantize, eval_text, report,
                                         announce=False)
            written += write_genai_folder(model.config, tokenizer, graph, folder, report)
    else:
        target = Path(out) if out else ckpt.with_suffix(".ts")
        write_logits_file(target, lambda staging: export_gpt_torchscript(model, tokenizer, staging),
                          lambda staging: torchscript_parity(model, staging), report)
        written.append(target)
    return written


def _write_onnx(model: GPT, tokenizer: CharTokenizer, target: Path,
                report: Callable[[str], None]) -> Path:
    """The fp32 ONNX file at `target`, moved there only after its parity checks passed."""
    with staged(target) as staging:
        export_gpt_onnx(model, tokenizer, staging)
        parity = onnx_parity(model, staging)
        require_parity(parity.worst, target)
        state_diff = None
        if model.config.yoke_state_size:
            state_diff = stateful_onnx_parity(model, staging)
            require_parity(state_diff, target)
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
    return target


def _write_quantized(model: GPT, tokenizer: CharTokenizer, fp32: Path, kind: str,
                     eval_text: str | None, report: Callable[[str], None],
                     announce: bool = True) -> Path:
    """`fp32` quantized (`kind`: int8 or int4) beside it, and its cost in accuracy reported;
    `announce`: name the file too (not a temporary one)."""
    target = fp32.with_suffix(f".{kind}.onnx")
    with staged(target) as staging:
        quantize(kind, fp32, staging)
    cost = quantization_cost(model, fp32, target, _eval_tokens(model, tokenizer, eval_text))
    ratio = target.stat().st_size / fp32.stat().st_size
    if announce:
        report(f"wrote {target} ({file_size(target)}, {ratio:.2f}x the fp32 file)")
    else:
        report(f"{kind} graph: {file_size(target)}, {ratio:.2f}x the fp32 graph")
    report(f"  max |Δlogits| vs torch {cost.max_abs_diff:.3g}, top-1 agreement with fp32 "
           f"{cost.top1_agreement:.1%}, loss fp32 {cost.loss_fp32:.4f} -> {kind} "
           f"{cost.loss_int8:.4f} ({cost.loss_int8 - cost.loss_fp32:+.4f}) on "
           f"{cost.eval_tokens:,} tokens")
    return target


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # The exporter logs a line per optional torchvision operator it cannot find; irrelevant here.
    logging.getLogger("torch.onnx._internal.exporter._registration").setLevel(logging.ERROR)
    try:
        check_output(args)
        with torch.no_grad():
            export_checkpoint(args.checkpoint, args.format, args.output,
                              getattr(args, "quantize", None), getattr(args, "eval_text", None),
                              report=lambda line: print(sanitize(line), flush=True))  # names paths
    except TextgenError as exc:
        print_error(exc)
        return 1
    return 0
