"""`python -m export onnx|torchscript CKPT` for a `kind="stack"` checkpoint (export/cli.py
dispatches here): write under a temporary name, check parity, move into place, report."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from export.errors import ExportError
from export.parity import FP32_TOLERANCE, require_parity
from export.stack_onnx import export_stack_onnx, stack_onnx_parity
from export.stack_torchscript import export_stack_torchscript, stack_torchscript_parity
from export.staging import file_size, staged, write_logits_file
from runtime.stack_layout import graph_sequence_length
from textgen_core.models.stack.loading import stack_from_checkpoint


def export_stack_checkpoint(payload: dict[str, Any], checkpoint: str, fmt: str, out: str | None,
                            quantize: str | None, report: Callable[[str], None]) -> list[Path]:
    if quantize:
        raise ExportError("--quantize is available for GPT exports only; export the stack in fp32")
    model, tokenizer = stack_from_checkpoint(payload)
    c = model.config
    ckpt = Path(checkpoint)
    if fmt == "onnx":
        target = Path(out) if out else ckpt.with_suffix(".onnx")
        with staged(target) as staging:
            export_stack_onnx(model, tokenizer, staging)
            parity = stack_onnx_parity(model, staging)
            require_parity(parity.worst, target)
        static = graph_sequence_length(c.layers, c.block_size)
        shape = "dynamic sequence" if static is None else f"sequence fixed at {static}"
        report(f"wrote {target} ({file_size(target)}; {shape})")
        stepped = (f", {parity.max_abs_diff_stepped:.2e} stepped with the state carried"
                   if static == 1 else "")
        report(f"  max |Δlogits| vs torch: {parity.max_abs_diff:.2e} batch of 2{stepped} "
               f"(limit {FP32_TOLERANCE:.0e})")
    else:
        target = Path(out) if out else ckpt.with_suffix(".ts")
        write_logits_file(target, lambda staging: export_stack_torchscript(model, tokenizer, staging),
                          lambda staging: stack_torchscript_parity(model, staging), report)
    return [target]
