"""int8 and int4 quantization of an exported GPT, and what it costs in accuracy.

int8: weights of the matrix multiplications are stored as int8 with per-tensor scales;
activations are quantized on the fly (onnxruntime `quantize_dynamic`). int4: the weights are
stored in blocks of 32 input rows, 4 bits each with one fp32 scale per block (symmetric), read by
onnxruntime's `com.microsoft.MatMulNBits`, the format onnxruntime-genai's builder writes for
`-p int4`; accuracy level 4 lets the CPU kernel quantize activations to int8 for its integer dot
products, as that builder does for the CPU. The embedding (a Gather) stays fp32 in both. The
KV-cache interface and the textgen metadata are unchanged; the checksum is stamped again for the
new bytes.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import torch

from export.onnx_file import save_with_checksum
from export.parity import open_session, run_onnx
from textgen_core.models.gpt import GPT


@dataclass
class QuantizationReport:
    max_abs_diff: float
    top1_agreement: float
    loss_fp32: float
    loss_int8: float  # the quantized file's loss (int8 or int4)
    eval_tokens: int


QUANTIZATIONS = ("int8", "int4")
INT4_BLOCK = 32
INT4_ACCURACY_LEVEL = 4


def _quiet_root_logger() -> contextlib.AbstractContextManager:
    """onnxruntime's quantizers log hints through the root logger on every call."""
    @contextlib.contextmanager
    def quiet():
        root = logging.getLogger()
        level = root.level
        root.setLevel(logging.ERROR)
        try:
            yield
        finally:
            root.setLevel(level)
    return quiet()


def _save_quantized(proto: onnx.ModelProto, dst: Path) -> Path:
    kept = [p for p in proto.metadata_props if p.key != "onnx.infer"]
    del proto.metadata_props[:]
    proto.metadata_props.extend(kept)
    return save_with_checksum(proto, dst)


def quantize(kind: str, src: str | Path, dst: str | Path) -> Path:
    """`quantize_int8` or `quantize_int4` by name (one of QUANTIZATIONS)."""
    return {"int8": quantize_int8, "int4": quantize_int4}[kind](src, dst)


def quantize_int4(src: str | Path, dst: str | Path) -> Path:
    """Block-quantise every weight MatMul of `src` to 4 bits (MatMulNBits) into `dst`."""
    from onnxruntime.quantization.matmul_nbits_quantizer import (
        DefaultWeightOnlyQuantConfig,
        MatMulNBitsQuantizer,
    )

    proto = onnx.load(str(src))
    settings = DefaultWeightOnlyQuantConfig(block_size=INT4_BLOCK, is_symmetric=True,
                                            accuracy_level=INT4_ACCURACY_LEVEL,
                                            op_types_to_quantize=("MatMul",))
    with _quiet_root_logger():
        quantizer = MatMulNBitsQuantizer(proto, algo_config=settings)
        quantizer.process()
    return _save_quantized(quantizer.model.model, Path(dst))


def quantize_int8(src: str | Path, dst: str | Path) -> Path:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    src, dst = Path(src), Path(dst)
    with tempfile.TemporaryDirectory(dir=dst.parent) as tmp:
        staged = Path(tmp) / "int8.onnx"
        with _quiet_root_logger():
            quantize_dynamic(src, staged, weight_type=QuantType.QInt8)
        proto = onnx.load(str(staged))
    return _save_quantized(proto, dst)


def _nll(session, tokens: np.ndarray, model: GPT) -> tuple[float, np.ndarray]:
    c = model.config
    total, count, argmaxes = 0.0, 0, []
    for start in range(0, len(tokens) - 1, c.block_size):
        window = tokens[start : start + c.block_size + 1]
        if len(window) < 2:
            break
        logits, _ = run_onnx(session, window[None, :-1], None, c.n_layer, c.n_head, c.head_size)
        logits = logits[0].astype(np.float64)
        log_z = np.log(np.exp(logits - logits.max(-1, keepdims=True)).sum(-1)) + logits.max(-1)
        total += float((log_z - logits[np.arange(len(window) - 1), window[1:]]).sum())
        count += len(window) - 1
        argmaxes.append(logits.argmax(-1))
    return total / count, np.concatenate(argmaxes)


def quantization_cost(model: GPT, fp32_path: Path, int8_path: Path, tokens: np.ndarray) -> QuantizationReport:
    # `int8_path`: the quantized file, int8 or int4.
    """Logit difference against torch, top-1 agreement with fp32, and the loss of both files on
    `tokens`."""
    fp32, int8 = open_session(fp32_path), open_session(int8_path)
    loss_fp32, top_fp32 = _nll(fp32, tokens, model)
    loss_int8, top_int8 = _nll(int8, tokens, model)
    c = model.config
    window = tokens[: c.block_size]
    with torch.inference_mode():
        expected = model(torch.from_numpy(window[None].astype(np.int64)))[0][0].float().numpy()
    got, _ = run_onnx(int8, window[None], None, c.n_layer, c.n_head, c.head_size)
    return QuantizationReport(
        max_abs_diff=float(np.abs(got[0] - expected).max()),
        top1_agreement=float((top_fp32 == top_int8).mean()),
        loss_fp32=loss_fp32, loss_int8=loss_int8, eval_tokens=len(tokens) - 1,
    )
