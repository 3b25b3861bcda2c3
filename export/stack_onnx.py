"""Layer stack → ONNX, and its parity check against the torch stack.

Inputs:  input_ids [b, s] int64, state.{i}.h / state.{i}.c [b, H] float32 (RNN/LSTM layer i)
Outputs: logits [b, s, V] float32, next_state.{i}.h / next_state.{i}.c [b, H] float32
s is dynamic for stacks without RNN/LSTM layers; otherwise the time loop is unrolled and s is
static (runtime/stack_layout.py says which). The graph runs the same math as the hand-written
layers in plain torch ops (`Stack.forward(reference=True)`); metadata and the checksum stamp are
those of the GPT export.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import Tensor, nn

from export.onnx_export import OPSET, save_textgen_onnx
from export.parity import open_session
from runtime.stack_layout import (
    graph_sequence_length,
    state_input_names,
    state_layers,
    state_output_names,
)
from runtime.tokenizer import CharTokenizer
from textgen_core.models.stack.model import Stack


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
            input_names=["input_ids", *state_input_names(config.layers)],
            output_names=["logits", *state_output_names(config.layers)],
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
        names = {0: "batch", 1: "sequence"} if value.name in ("input_ids", "logits") else {0: "batch"}
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
