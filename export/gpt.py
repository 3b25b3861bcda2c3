"""The GPT's exports: its ONNX graph (fused by export/onnx_fusion.py) and its TorchScript file.

GPT → ONNX with a key/value cache, in the interface onnxruntime-genai and optimum use.

Inputs:  input_ids [b, s] int64, past_key_values.{i}.key|value [b, h, p, d] float32 (p may be 0)
Outputs: logits [b, s, V] float32, present.{i}.key|value [b, h, p+s, d] float32
A rotary model adds the input position_ids [b, s] int64: where the new tokens sit, p, p+1, ...
until the sampler rolls its cache (runtime/window.py), more after. A stateful yoke adds the
input yoke_state [b, H] (the window's state) and the output yoke_state_out [b, s, H] (the
yoke's activation at every position; textgen_core/models/yoke.py). A rotary model without a
stateful yoke also takes seqlens_k [b] int32 and total_sequence_length [] int32 (p + s - 1 and
p + s), onnxruntime-genai's GroupQueryAttention inputs: the past may then be a longer buffer whose
first p positions are valid, extended in place (export/onnx_fusion.py, runtime/gpt.py).
b, s and p are dynamic. The tokenizer, model config and format version ride in metadata_props,
so the .onnx file alone is enough to sample.

GPT → TorchScript: `forward(input_ids [b, s]) -> logits [b, s, V]` for any 1 <= s <= block_size;
a stateful yoke model: `forward(input_ids, yoke_state [b, H]) -> (logits, yoke_state_out [b, s, H])`.

TorchScript files can run arbitrary code when loaded, so the runtime only opens them with an
explicit trust flag; the tokenizer and config ride along as `_extra_files`.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import onnx
import torch
from torch import Tensor, nn

from export.onnx_file import OPSET, save_textgen_onnx
from export.onnx_fusion import fuse_gpt_graph
from export.torchscript_file import extra_files, load_traced, save_traced
from runtime.contract import (
    INPUT_IDS,
    LOGITS,
    POSITION_IDS,
    YOKE_STATE,
    YOKE_STATE_OUT,
    gpt_input_names,
    gpt_output_names,
)
from runtime.tokenizer import CharTokenizer
from textgen_core.models.gpt import GPT


class _FlatCacheGPT(nn.Module):
    """The GPT with its cache flattened into positional tensors, as ONNX wants them, and the
    inputs only some models have (position_ids: rotary; yoke_state: a stateful yoke) in `extra`,
    in that order. A stateful yoke's activations are the last output."""

    def __init__(self, model: GPT) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: Tensor, past: tuple[Tensor, ...], extra: tuple[Tensor, ...] = ()
                ) -> tuple[Tensor, ...]:
        config = self.model.config
        positions = extra[0] if config.rotary else None
        state = extra[-1] if config.yoke_state_size else None
        pairs = [(past[2 * i], past[2 * i + 1]) for i in range(len(past) // 2)]
        logits, _, present, hidden = self.model.forward_stateful(
            input_ids, state, past_key_values=pairs, positions=positions)
        flat: list[Tensor] = [logits]
        for k, v in present:
            flat += [k, v]
        return (*flat, hidden) if state is not None else tuple(flat)


def export_gpt_onnx(model: GPT, tokenizer: CharTokenizer, path: str | Path) -> Path:
    """Write `model` as an fp32 ONNX graph with KV cache and metadata to `path`; returns the path."""
    path = Path(path)
    config = model.config
    model = model.float().eval().cpu()
    # Example shapes with p > 0 and s > 1 so that neither dimension is specialised to a constant.
    example_ids = torch.zeros((1, 2), dtype=torch.long)
    past_len = min(3, config.block_size - 2)
    kv_shape = (1, config.n_head, past_len, config.head_size)
    example_past = tuple(torch.zeros(kv_shape) for _ in range(2 * config.n_layer))
    batch = torch.export.Dim("batch", min=1, max=4096)
    seq = torch.export.Dim("seq", min=1, max=config.block_size)
    past = torch.export.Dim("past", min=0, max=config.block_size)
    dynamic_shapes = ({0: batch, 1: seq}, tuple({0: batch, 2: past} for _ in example_past))
    state_size = config.yoke_state_size
    extra: tuple[Tensor, ...] = ()
    extra_shapes: tuple[dict, ...] = ()
    if config.rotary:  # where the new tokens sit; the runtime counts on past a rolled cache
        extra, extra_shapes = (torch.arange(2).view(1, 2) + past_len,), ({0: batch, 1: seq},)
    if state_size:
        extra, extra_shapes = (*extra, torch.zeros((1, state_size))), (*extra_shapes, {0: batch})
    example_inputs: tuple = (example_ids, example_past)
    if extra:  # an empty tuple input confuses torch.export's dynamic-shape check
        example_inputs, dynamic_shapes = (*example_inputs, extra), (*dynamic_shapes, extra_shapes)
    with warnings.catch_warnings():
        # The exporter reports that equal dims share one symbol, which is what we want.
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            _FlatCacheGPT(model),
            example_inputs,
            input_names=gpt_input_names(config.n_layer, stateful=bool(state_size),
                                    rotary=config.rotary),
            output_names=gpt_output_names(config.n_layer, stateful=bool(state_size)),
            dynamic_shapes=dynamic_shapes,
            opset_version=OPSET,
            dynamo=True,
            external_data=False,
            verbose=False,
        )
    proto = program.model_proto
    _rename_dims(proto)
    # Fewer, fused kernels for the runtime (export/onnx_fusion.py); same interface and numbers.
    fuse_gpt_graph(proto, n_layer=config.n_layer, n_head=config.n_head,
                   vocab_size=config.vocab_size, block_size=config.block_size,
                   cache_buffers=config.rotary and not state_size)
    return save_textgen_onnx(proto, path, kind="gpt", tokenizer=tokenizer.to_dict(),
                             model_config=config.to_dict())


def _rename_dims(proto: onnx.ModelProto) -> None:
    """Give the dynamic dimensions the contract's names (the exporter names them s0, s1, ...)."""
    for value in list(proto.graph.input) + list(proto.graph.output):
        dims = value.type.tensor_type.shape.dim
        if value.name in (INPUT_IDS, POSITION_IDS, LOGITS, YOKE_STATE_OUT):
            names = {0: "batch", 1: "sequence"}
        elif value.name == YOKE_STATE:
            names = {0: "batch"}
        elif value.name.startswith("past_key_values."):
            names = {0: "batch", 2: "past_sequence"}
        else:
            names = {0: "batch", 2: "total_sequence"}
        for axis, name in names.items():
            if dims[axis].HasField("dim_param") or not dims[axis].HasField("dim_value"):
                dims[axis].dim_param = name


class _LogitsOnly(nn.Module):
    def __init__(self, model: GPT) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: Tensor) -> Tensor:
        return self.model(input_ids)[0]


class _StatefulLogits(nn.Module):
    def __init__(self, model: GPT) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: Tensor, yoke_state: Tensor) -> tuple[Tensor, Tensor]:
        logits, _, _, hidden = self.model.forward_stateful(input_ids, yoke_state)
        return logits, hidden


def export_gpt_torchscript(model: GPT, tokenizer: CharTokenizer, path: str | Path) -> Path:
    path = Path(path)
    model = model.float().eval().cpu()
    example = torch.zeros((1, min(8, model.config.block_size)), dtype=torch.long)
    state_size = model.config.yoke_state_size
    wrapper: nn.Module = _StatefulLogits(model) if state_size else _LogitsOnly(model)
    inputs = (example, torch.zeros((1, state_size))) if state_size else example
    extra = extra_files("gpt", tokenizer.to_dict(), model.config.to_dict())
    return save_traced(wrapper, inputs, path, extra)


def torchscript_parity(model: GPT, ts_path: str | Path, seed: int = 0) -> float:
    """Max |Δlogits| between the file and the torch model at two sequence lengths."""
    c = model.config
    loaded = load_traced(ts_path)
    worst = 0.0
    generator = torch.Generator().manual_seed(seed)
    for length in sorted({1, min(c.block_size, 19), c.block_size}):
        ids = torch.randint(0, c.vocab_size, (2, length), generator=generator)
        with torch.inference_mode():
            if c.yoke_state_size:  # compare logits and state rows, with a nonzero state
                state = torch.randn((2, c.yoke_state_size), generator=generator)
                logits, _, _, hidden = model.forward_stateful(ids, state)
                expected = torch.cat([logits, hidden], dim=-1)
                got = torch.cat(loaded(ids, state), dim=-1)
            else:
                expected = model(ids)[0]
                got = loaded(ids)
        worst = max(worst, float((got - expected).abs().max()))
    return worst
