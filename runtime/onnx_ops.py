"""The operators textgen's exporter writes for each kind of model, and nothing else runs.

onnxruntime will run any standard operator, and some of them make a crafted file dangerous to
open even without custom code: `Loop` can spin forever (Ctrl-C does not reach into a kernel), `If`
nests graphs without end, `ConstantOfShape` or `Expand` of a huge shape exhausts memory, `Resize`
and friends are large attack surfaces. A textgen file is refused, before onnxruntime sees it,
when any node (in any graph or function) uses an operator outside its kind's set here.

Each set is what the exporter emits for that kind (export/gpt.py with and without the
fusions of export/onnx_fusion.py, which fall back to the plain graph; export/quantize.py's int8
and int4 variants; export/gan.py; export/stack.py for every layer type). tests/runtime/
test_onnx_ops.py exports tiny models of every kind and variant and checks the sets cover them, so
an exporter change that adds an operator fails there rather than in a user's chat.
"""

from __future__ import annotations

from runtime.errors import ModelFileError

MS = "com.microsoft"

_GPT = {
    # the exporter's graph (learned or rotary positions, yoke, stateful yoke) before fusion
    "Add", "Cast", "Concat", "Div", "Erf", "Gather", "Gemm", "IsNaN", "LayerNormalization",
    "LessOrEqual", "MatMul", "Mul", "Neg", "Range", "Reshape", "Shape", "Slice", "Softmax",
    "Split", "Squeeze", "Transpose", "Unsqueeze", "Where",
    # int8 (dynamic quantization of the matmul weights)
    "DequantizeLinear", "DynamicQuantizeLinear", "MatMulInteger",
}
_GPT_FUSED = {"Gelu", "MultiHeadAttention", "GroupQueryAttention", "RotaryEmbedding",
              "MatMulNBits"}  # int4 (block-quantised matmul weights)

_GAN = {
    "Add", "ArgMax", "Cast", "Clip", "Concat", "Constant", "ConstantOfShape", "CumSum", "Div",
    "Equal", "Erf", "Expand", "Gather", "Gemm", "Identity", "LayerNormalization", "LeakyRelu",
    "Less", "MatMul", "Mul", "ReduceSum", "Reshape", "Shape", "Slice", "Softmax", "Split", "Transpose",
    "Unsqueeze", "Where",
}

_STACK = {
    "Add", "Clip", "Concat", "Expand", "Gather", "GatherND", "MatMul", "Mul", "Reciprocal",
    "ReduceMean", "Reshape", "Shape", "Sigmoid", "Slice", "Softmax", "Split", "Sqrt", "Sub",
    "Tanh", "Transpose", "Trilu", "Unsqueeze", "Where",
}

# onnx spells the default domain "" or "ai.onnx"; both mean the same operators.
ALLOWED_OPS: dict[str, frozenset[tuple[str, str]]] = {
    "gpt": frozenset({(d, op) for op in _GPT for d in ("", "ai.onnx")}
                     | {(MS, op) for op in _GPT_FUSED}),
    "gan": frozenset({(d, op) for op in _GAN for d in ("", "ai.onnx")}),
    "stack": frozenset({(d, op) for op in _STACK for d in ("", "ai.onnx")}),
}


def check_ops(ops: set[tuple[str, str]], kind: str) -> None:
    """Refuse a `kind` graph using any (domain, op_type) its exporter never writes."""
    foreign = sorted(ops - ALLOWED_OPS[kind])
    if foreign:
        shown = ", ".join(f"{d}.{op}" if d else op for d, op in foreign[:5])
        more = f" and {len(foreign) - 5} more" if len(foreign) > 5 else ""
        raise ModelFileError(
            f"the graph uses operator(s) {shown}{more}, which textgen's exporter never writes "
            f"for a {kind} model; refusing it"
        )
