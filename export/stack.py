"""The layer stack's exports: its ONNX and TorchScript files, and the TorchScript file's sampler.

`python -m export onnx|torchscript CKPT` for a `kind="stack"` checkpoint (export/cli.py
dispatches here): write under a temporary name, check parity, move into place, report.

Layer stack → ONNX, and its parity check against the torch stack.

Inputs:  input_ids [b, s] int64, state.{i}.h / state.{i}.c [b, H] float32 (RNN/LSTM layer i)
Outputs: logits [b, s, V] float32, next_state.{i}.h / next_state.{i}.c [b, H] float32
s is dynamic for stacks without RNN/LSTM layers; otherwise the time loop is unrolled and s is
static (runtime/stack.py says which). The graph runs the same math as the hand-written
layers in plain torch ops (`Stack.forward(reference=True)`); metadata and the checksum stamp are
those of the GPT export.

Layer stack → TorchScript, with the ONNX file's interface:
`forward(input_ids, *state) -> (logits, *next_state)` (runtime/stack.py names and orders
the state; a stack without RNN/LSTM layers takes and returns none, and its sequence axis is
dynamic). Like every TorchScript file it runs code when loaded: for PyTorch deployments that
trust it; the runtime never opens one.

The TorchScript file is sampled by the ONNX runtime's
own `StackGenerator`: `TorchScriptStack` offers `OnnxStack`'s interface (`forward(ids, state)`,
`empty_state`, the sizes and the layout of runtime/stack.py), so windows, padding, the
carried RNN/LSTM state and the choice of each token are the runtime's code, and the same seed
gives the same text from either file.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from torch import Tensor, nn

from export.errors import ExportError
from export.onnx_file import OPSET, save_textgen_onnx
from export.parity import FP32_TOLERANCE, open_session, require_parity
from export.staging import file_size, staged, write_logits_file
from export.torchscript_file import TorchScriptFile, extra_files, load_traced, save_traced
from runtime.contract import INPUT_IDS, LOGITS
from runtime.errors import ModelFileError
from runtime.model_limits import bounded_size
from runtime.stack import (
    RECURRENT_TYPES,
    STATE_PARTS,
    StackGenerator,
    graph_sequence_length,
    is_windowed,
    state_input_names,
    state_layers,
    state_output_names,
)
from runtime.tokenizer import CharTokenizer
from textgen_core.models.stack.loading import stack_from_checkpoint
from textgen_core.models.stack.model import Stack


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


class _FlatStateStack(nn.Module):
    """The stack with its recurrent state flattened into positional tensors, as ONNX wants."""

    def __init__(self, model: Stack) -> None:
        super().__init__()
        self.model = model
        self.parts = [2 if kind == "LSTM" else 1 for _, kind, _ in state_layers(model.config.layers)]

    def forward(self, input_ids: Tensor, flat_state: tuple[Tensor, ...] = ()) -> tuple[Tensor, ...]:
        state, at = [], 0
        for n in self.parts:
            state.append(tuple(flat_state[at : at + n]))
            at += n
        logits, _, next_state = self.model(input_ids, state=state or None, reference=True)
        return (logits, *(t for s in next_state for t in s))


def _example_state(model: Stack, batch: int) -> tuple[Tensor, ...]:
    return tuple(t for s in model.empty_state(batch) for t in s)


def export_stack_onnx(model: Stack, tokenizer: CharTokenizer, path: str | Path) -> Path:
    path = Path(path)
    config = model.config
    model = model.float().eval().cpu()
    static = graph_sequence_length(config.layers, config.block_size)
    # Example sizes above 1 so that no dynamic dimension is specialised to a constant.
    length = static or min(3, config.block_size)
    example_ids = torch.zeros((2, length), dtype=torch.long)
    example_state = _example_state(model, 2)
    batch = torch.export.Dim("batch", min=1, max=4096)
    ids_dims = {0: batch} if static or config.block_size < 2 else {
        0: batch, 1: torch.export.Dim("seq", min=1, max=config.block_size)}
    args: tuple = (example_ids,)
    dynamic_shapes: tuple = (ids_dims,)
    if example_state:  # a stack without RNN/LSTM layers has no state arguments at all
        args = (example_ids, example_state)
        dynamic_shapes = (ids_dims, tuple({0: batch} for _ in example_state))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            _FlatStateStack(model), args,
            input_names=[INPUT_IDS, *state_input_names(config.layers)],
            output_names=[LOGITS, *state_output_names(config.layers)],
            dynamic_shapes=dynamic_shapes, opset_version=OPSET, dynamo=True,
            external_data=False, verbose=False,
        )
    proto = program.model_proto
    _rename_dims(proto)
    return save_textgen_onnx(proto, path, kind="stack", tokenizer=tokenizer.to_dict(),
                             model_config=config.to_dict())


def _rename_dims(proto: onnx.ModelProto) -> None:
    for value in list(proto.graph.input) + list(proto.graph.output):
        dims = value.type.tensor_type.shape.dim
        names = {0: "batch", 1: "sequence"} if value.name in (INPUT_IDS, LOGITS) else {0: "batch"}
        for axis, name in names.items():
            if not dims[axis].HasField("dim_value"):
                dims[axis].dim_param = name


@dataclass
class StackParity:
    max_abs_diff: float  # the whole sequence (or window) in one call, batch of two
    max_abs_diff_stepped: float  # stepped stacks: token by token with the state carried

    @property
    def worst(self) -> float:
        return max(self.max_abs_diff, self.max_abs_diff_stepped)


def run_stack_onnx(session: object, ids: np.ndarray, state: list[np.ndarray]
                   ) -> tuple[np.ndarray, list[np.ndarray]]:
    names = [i.name for i in session.get_inputs()]  # type: ignore[attr-defined]
    feed = dict(zip(names, [ids.astype(np.int64), *state], strict=True))
    outputs = session.run(None, feed)  # type: ignore[attr-defined]
    return outputs[0], outputs[1:]


def stack_onnx_parity(model: Stack, onnx_path: str | Path, seed: int = 0) -> StackParity:
    """Max |Δlogits| between torch (the hand-written layers' forward) and onnxruntime."""
    c = model.config
    static = graph_sequence_length(c.layers, c.block_size)
    length = min(c.block_size, 24)
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, c.vocab_size, (2, length), generator=generator)
    with torch.inference_mode():
        expected = model.eval()(ids)[0].float().numpy()
    session = open_session(onnx_path)
    zeros = [t.numpy() for t in _example_state(model, 2)]
    if static == 1:  # stepped: one token per call, the state carried
        state, steps = zeros, []
        for t in range(length):
            logits, state = run_stack_onnx(session, ids[:, t : t + 1].numpy(), state)
            steps.append(logits)
        stepped = float(np.abs(np.concatenate(steps, axis=1) - expected).max())
        return StackParity(max_abs_diff=stepped, max_abs_diff_stepped=stepped)
    padded = ids.numpy()
    if static is not None:  # a fixed window: pad on the right, read the real positions
        padded = np.concatenate([padded, np.zeros((2, static - length), np.int64)], axis=1)
    logits, _ = run_stack_onnx(session, padded, zeros)
    diff = float(np.abs(logits[:, :length] - expected).max())
    return StackParity(max_abs_diff=diff, max_abs_diff_stepped=0.0)


class _Positional(torch.nn.Module):
    """`_FlatStateStack` with the state as separate positional arguments (what tracing wants)."""

    def __init__(self, model: Stack) -> None:
        super().__init__()
        self.flat = _FlatStateStack(model)

    def forward(self, input_ids: torch.Tensor, *state: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return self.flat(input_ids, tuple(state))


def export_stack_torchscript(model: Stack, tokenizer: CharTokenizer, path: str | Path) -> Path:
    path = Path(path)
    model = model.float().eval().cpu()
    c = model.config
    length = graph_sequence_length(c.layers, c.block_size) or min(8, c.block_size)
    example = (torch.zeros((1, length), dtype=torch.long), *_example_state(model, 1))
    return save_traced(_Positional(model), example, path,
                       extra_files("stack", tokenizer.to_dict(), c.to_dict()))


def stack_torchscript_parity(model: Stack, ts_path: str | Path, seed: int = 0) -> float:
    """Max |Δlogits| between the file and the torch stack on a batch of two."""
    c = model.config
    loaded = load_traced(ts_path)
    static = graph_sequence_length(c.layers, c.block_size)
    lengths = [static] if static else sorted({1, min(c.block_size, 19), c.block_size})
    generator = torch.Generator().manual_seed(seed)
    worst = 0.0
    for length in lengths:
        ids = torch.randint(0, c.vocab_size, (2, length), generator=generator)
        with torch.inference_mode():
            expected = model.eval()(ids)[0]
            got = loaded(ids, *_example_state(model, 2))[0]
        worst = max(worst, float((got - expected).abs().max()))
    return worst


def _layers(loaded: TorchScriptFile) -> list[dict[str, Any]]:
    layers = loaded.config.get("layers")
    if not isinstance(layers, list) or not layers or not all(
            isinstance(layer, dict) and isinstance(layer.get("type"), str) for layer in layers):
        raise ModelFileError(f"{loaded.path}: its stack config has no valid layer list")
    for layer in layers:
        if layer["type"] in RECURRENT_TYPES:
            bounded_size(loaded.path, layer, "hidden_size", f"stack config's {layer['type']} layer")
    return layers


class TorchScriptStack:
    """A trusted stack TorchScript file: logits and the next recurrent state for ids and a state."""

    def __init__(self, loaded: TorchScriptFile) -> None:
        self.path = loaded.path
        self.module = loaded.module
        self.tokenizer, self.config = loaded.tokenizer, loaded.config
        self.block_size = bounded_size(self.path, self.config, "block_size", "stack config")
        self.vocab_size = bounded_size(self.path, self.config, "vocab_size", "stack config")
        if self.vocab_size != self.tokenizer.vocab_size:
            raise ModelFileError(f"{self.path}: the tokenizer has {self.tokenizer.vocab_size} tokens "
                                 f"but the model {self.vocab_size}")
        self.layers = _layers(loaded)
        self.windowed = is_windowed(self.layers)
        self.sequence_length = graph_sequence_length(self.layers, self.block_size)
        self._hidden = [h for _, kind, h in state_layers(self.layers) for _ in STATE_PARTS[kind]]

    def empty_state(self, batch_size: int = 1) -> list[np.ndarray]:
        return [np.zeros((batch_size, h), np.float32) for h in self._hidden]

    def forward(self, ids: np.ndarray, state: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
        """Logits (b, s, V) for `ids` (b, s) after `state`, and the state after the last id."""
        inputs = [torch.from_numpy(np.ascontiguousarray(ids, dtype=np.int64)),
                  *(torch.from_numpy(np.ascontiguousarray(s, dtype=np.float32)) for s in state)]
        with torch.inference_mode():
            outputs = self.module(*inputs)
        logits, *next_state = (outputs,) if isinstance(outputs, torch.Tensor) else outputs
        return logits.float().numpy(), [s.float().numpy() for s in next_state]


def torchscript_stack_generator(loaded: TorchScriptFile) -> StackGenerator:
    """The runtime's stack generator, sampling the TorchScript stack."""
    return StackGenerator(loaded.path, model=TorchScriptStack(loaded))  # type: ignore[arg-type]
