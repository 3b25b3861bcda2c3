"""Rewrite the exported GPT graph into fewer, fused onnxruntime operators (same interface).

The dynamo exporter spells each attention layer as ~40 small nodes: reshapes and transposes of
q/k/v, a concatenation of the cache, a causal mask built from ranges, a transposed copy of the
whole key cache, two scalings, softmax, a NaN guard and two matmuls. At batch 1 every one of them is
a separate kernel launch and several copy the whole cache once per token. onnxruntime's own
`com.microsoft.MultiHeadAttention` does all of it in one kernel: it takes q, k, v as (b, s, C),
the past cache as (b, h, p, d), applies the causal mask offset by the past length
(`unidirectional=1`) and returns the extended cache in the contract's layout. The erf-based GELU
(five nodes) becomes `com.microsoft.Gelu`.

A rotary model's queries and keys come rotated out of a second Split (textgen_core/models/gpt.py);
the fused attention takes them as they are. Their rotation (eight nodes per layer) becomes one
`com.microsoft.RotaryEmbedding`, which reads position_ids and the model's cos/sin tables.

With `cache_buffers` (rotary models without a stateful yoke) the attention is
`com.microsoft.GroupQueryAttention` instead, onnxruntime-genai's decoding kernel, and the graph
takes two more inputs, `seqlens_k` [b] int32 (valid cache positions after this call, minus one)
and `total_sequence_length` [] int32. Fed a past of exactly the valid positions, it computes what
MultiHeadAttention does. Its point is the other way to feed it: a past buffer longer than the
valid positions, bound (onnxruntime I/O binding) as the present output too, which the kernel
extends in place; MultiHeadAttention copies the whole cache into a new present on every token
(runtime/gpt.py).

The rewrite matches the graph by its interface names (`present.{i}.key|value` are Concats of the
past and the new keys/values), touches a layer only when the whole pattern is there, and is then
checked against the unfused graph on random inputs; if anything disagrees the unfused graph is
kept (with a warning), so a future exporter that spells the graph differently costs speed, never
correctness. `com.microsoft` is onnxruntime's built-in domain, which the runtime's scan allows.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import helper, numpy_helper

from runtime.contract import INPUT_IDS, LENGTH_INPUTS, POSITION_IDS, past_name, present_name
from runtime.gpt import attention_lengths, position_ids

MS_DOMAIN = "com.microsoft"
CHECK_TOLERANCE = 1e-4


@dataclass
class FusionReport:
    nodes_before: int
    nodes_after: int
    attention_fused: int
    gelu_fused: int
    rotary_fused: int = 0


class _Graph:
    """Producer/consumer look-ups over a graph's nodes."""

    def __init__(self, graph: onnx.GraphProto) -> None:
        self.producer = {out: node for node in graph.node for out in node.output}
        self.consumers: dict[str, list[onnx.NodeProto]] = {}
        for node in graph.node:
            for name in node.input:
                self.consumers.setdefault(name, []).append(node)
        self.constants = {t.name: t for t in graph.initializer}
        for node in graph.node:
            for attribute in node.attribute:
                if node.op_type == "Constant" and attribute.name == "value":
                    self.constants[node.output[0]] = attribute.t

    def made_by(self, name: str, op: str) -> onnx.NodeProto | None:
        node = self.producer.get(name)
        return node if node is not None and node.op_type == op else None

    def only_consumer(self, name: str, op: str) -> onnx.NodeProto | None:
        users = self.consumers.get(name, [])
        return users[0] if len(users) == 1 and users[0].op_type == op else None

    def scalar(self, name: str) -> float | None:
        tensor = self.constants.get(name)
        if tensor is None:
            return None
        value = numpy_helper.to_array(tensor)
        return float(value.reshape(-1)[0]) if value.size == 1 else None


def _attention_layer(g: _Graph, layer: int, n_head: int, cache_buffers: bool):
    """(new node, nodes it replaces) for one layer, or None when the pattern is not all there."""
    concat_k = g.made_by(present_name(layer, "key"), "Concat")
    concat_v = g.made_by(present_name(layer, "value"), "Concat")
    if concat_k is None or concat_v is None or len(concat_k.input) != 2 or len(concat_v.input) != 2:
        return None
    past_k, new_k = concat_k.input
    past_v, new_v = concat_v.input
    sources = []
    for name in (new_k, new_v):
        transpose = g.made_by(name, "Transpose")
        reshape = transpose and g.made_by(transpose.input[0], "Reshape")
        if reshape is None:
            return None
        sources.append(reshape.input[0])
    # The split of the projection into (q, k, v), or, in a rotary model, of the rotated rows
    # into (q, k) with v split off before the rotation.
    split = g.producer.get(sources[0])
    if split is None or split.op_type != "Split" or list(split.output[1:2]) != sources[:1]:
        return None
    if len(split.output) not in (2, 3) or list(split.output[2:]) not in ([], sources[1:]):
        return None
    # The attention output: probabilities @ present value, back to (b, h*d) rows for c_proj.
    users = [n for n in g.consumers.get(concat_v.output[0], []) if n.op_type == "MatMul"]
    if len(users) != 1 or users[0].input[1] != concat_v.output[0]:
        return None
    transpose = g.only_consumer(users[0].output[0], "Transpose")
    reshape = transpose and g.only_consumer(transpose.output[0], "Reshape")
    if reshape is None:
        return None
    outputs = [reshape.output[0], concat_k.output[0], concat_v.output[0]]
    name = f"textgen_attention_{layer}"
    if cache_buffers:  # causal by construction, offset by the valid past positions
        fused = helper.make_node(
            "GroupQueryAttention",
            [split.output[0], sources[0], sources[1], past_k, past_v, *LENGTH_INPUTS],
            outputs, name=name, domain=MS_DOMAIN, num_heads=n_head, kv_num_heads=n_head)
    else:
        fused = helper.make_node(
            "MultiHeadAttention",
            [split.output[0], sources[0], sources[1], "", "", "", past_k, past_v],
            outputs, name=name, domain=MS_DOMAIN, num_heads=n_head, unidirectional=1)
    return fused, [concat_k, concat_v, reshape]


def _table(g: _Graph, name: str) -> str | None:
    """The initializer a (b, s, 1, d) rotation table is gathered from (by position_ids)."""
    unsqueeze = g.made_by(name, "Unsqueeze")
    concat = unsqueeze and g.made_by(unsqueeze.input[0], "Concat")
    if concat is None or len(concat.input) != 2:
        return None
    gather = g.made_by(concat.input[1], "Gather") or g.made_by(concat.input[1], "GatherND")
    if gather is None or gather.input[0] not in g.constants:
        return None
    return gather.input[0] if POSITION_IDS in gather.input[1:] or _from_positions(g, gather) else None


def _from_positions(g: _Graph, gather: onnx.NodeProto) -> bool:
    unsqueeze = g.made_by(gather.input[1], "Unsqueeze")
    return unsqueeze is not None and unsqueeze.input[0] == POSITION_IDS


def _rotary(g: _Graph, add: onnx.NodeProto, n_head: int):
    """A rotary model's rotation of its (b, s, 2C) query/key rows, as the exporter writes
    `x * cos + swap_halves(x) * sin` on their (b, s, 2h, d) view, -> (RotaryEmbedding, replaced).
    The node reads position_ids and the model's own cos/sin tables (textgen_core/models/rotary.py)."""
    rows_out = g.only_consumer(add.output[0], "Reshape")
    muls = [g.made_by(name, "Mul") for name in add.input]
    if rows_out is None or None in muls:
        return None
    for straight, swapped in (muls, muls[::-1]):
        view = g.made_by(straight.input[0], "Reshape")
        concat = g.made_by(swapped.input[0], "Concat")
        halves = concat and g.made_by(concat.input[0], "Split")
        if view is None or halves is None or halves.input[0] != view.output[0] \
                or list(concat.input) != list(halves.output[::-1]):
            continue
        tables = _table(g, straight.input[1]), _table(g, swapped.input[1])
        if None in tables:
            return None
        node = helper.make_node(
            "RotaryEmbedding", [view.input[0], POSITION_IDS, *tables], [rows_out.output[0]],
            name=f"textgen_rotary_{add.name}", domain=MS_DOMAIN, num_heads=2 * n_head,
            interleaved=0)
        return node, [rows_out]
    return None


def _gelu(g: _Graph, erf: onnx.NodeProto):
    """x * 0.5 * (1 + erf(x / sqrt(2))) as the exporter writes it -> (Gelu node, replaced)."""
    div = g.made_by(erf.input[0], "Div")
    add = g.only_consumer(erf.output[0], "Add")
    half = add and g.only_consumer(add.output[0], "Mul")
    times_x = half and g.only_consumer(half.output[0], "Mul")
    if div is None or times_x is None:
        return None
    x = div.input[0]
    other = [n for n in add.input if n != erf.output[0]]
    scale = [n for n in half.input if n != add.output[0]]
    checks = (
        g.scalar(div.input[1]), math.sqrt(2.0),
        g.scalar(other[0]) if other else None, 1.0,
        g.scalar(scale[0]) if scale else None, 0.5,
    )
    for got, want in zip(checks[::2], checks[1::2], strict=True):
        if got is None or not math.isclose(got, want, rel_tol=1e-6):
            return None
    if x not in times_x.input:
        return None
    node = helper.make_node("Gelu", [x], [times_x.output[0]], name=f"textgen_gelu_{erf.name}",
                            domain=MS_DOMAIN)
    return node, [times_x]


def _sort_topologically(graph: onnx.GraphProto) -> None:
    """A fused node takes the place of the last node it replaces; make every node follow the
    producers of its inputs again, keeping the original order otherwise."""
    ready = {i.name for i in graph.input} | {t.name for t in graph.initializer} | {""}
    pending, ordered = list(graph.node), []
    while pending:
        waiting = []
        for node in pending:
            if all(name in ready for name in node.input):
                ordered.append(node)
                ready.update(node.output)
            else:
                waiting.append(node)
        if len(waiting) == len(pending):
            raise ValueError("the rewritten graph has a cycle or a missing input")
        pending = waiting
    del graph.node[:]
    graph.node.extend(ordered)


def _remove_dead(graph: onnx.GraphProto) -> None:
    outputs = {o.name for o in graph.output}
    nodes = list(graph.node)
    while True:
        used = {name for node in nodes for name in node.input} | outputs
        kept = [n for n in nodes if any(out in used for out in n.output)]
        if len(kept) == len(nodes):
            break
        nodes = kept
    del graph.node[:]
    graph.node.extend(nodes)
    live = {name for node in nodes for name in node.input}
    unused = [t for t in graph.initializer if t.name not in live]
    for tensor in unused:
        graph.initializer.remove(tensor)
    # Shape annotations of tensors that no longer exist would only mislead readers of the file.
    produced = {name for node in nodes for name in node.output}
    stale = [v for v in graph.value_info if v.name not in produced]
    for value in stale:
        graph.value_info.remove(value)


def _rewrite(proto: onnx.ModelProto, n_layer: int, n_head: int, cache_buffers: bool
             ) -> tuple[int, int, int]:
    g = _Graph(proto.graph)
    replace: dict[int, onnx.NodeProto] = {}  # id(node) -> the fused node taking its place
    drop: set[int] = set()
    attention = gelu = rotary = 0
    for layer in range(n_layer):
        found = _attention_layer(g, layer, n_head, cache_buffers)
        if found is None:
            continue
        node, old = found
        replace[id(old[-1])] = node
        drop.update(id(n) for n in old[:-1])
        attention += 1
    if POSITION_IDS in {i.name for i in proto.graph.input}:
        for add in [n for n in proto.graph.node if n.op_type == "Add"]:
            found = _rotary(g, add, n_head)
            if found is not None:
                node, old = found
                replace[id(old[0])] = node
                rotary += 1
    for erf in [n for n in proto.graph.node if n.op_type == "Erf"]:
        found = _gelu(g, erf)
        if found is None:
            continue
        node, old = found
        replace[id(old[0])] = node
        gelu += 1
    nodes = [replace.get(id(n), n) for n in proto.graph.node if id(n) not in drop]
    del proto.graph.node[:]
    proto.graph.node.extend(nodes)
    if cache_buffers and attention:
        if attention != n_layer:  # one interface for the whole cache, or none
            raise ValueError(f"only {attention} of {n_layer} attention layers matched")
        proto.graph.input.extend([
            helper.make_tensor_value_info(LENGTH_INPUTS[0], onnx.TensorProto.INT32, ["batch"]),
            helper.make_tensor_value_info(LENGTH_INPUTS[1], onnx.TensorProto.INT32, [])])
    _remove_dead(proto.graph)
    _sort_topologically(proto.graph)
    if (attention or gelu or rotary) and not any(o.domain == MS_DOMAIN for o in proto.opset_import):
        proto.opset_import.append(helper.make_opsetid(MS_DOMAIN, 1))
    return attention, gelu, rotary


def _outputs(proto: onnx.ModelProto, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
    """Every output of `proto` on `feed`; a GroupQueryAttention graph also gets the lengths that
    say the past is all valid."""
    import onnxruntime as ort

    if LENGTH_INPUTS[0] in {i.name for i in proto.graph.input}:
        ids, past = feed[INPUT_IDS], feed[past_name(0, "key")]
        feed = {**feed, **attention_lengths(past.shape[2], *ids.shape)}

    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(proto.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    return session.run(None, feed)


# (batch, past, new) of the check's calls: masks, cache and batching. GroupQueryAttention on
# the CPU reads several new tokens after a past only at batch 1, the one shape it is not fed.
CHECK_CALLS = ((2, 3, 1), (1, 3, 2), (2, 0, 2))


def _random_feed(proto: onnx.ModelProto, vocab_size: int, block_size: int, batch: int, past: int,
                 new: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    past, new = min(past, block_size - 2), min(new, block_size - 1)
    feed: dict[str, np.ndarray] = {}
    for value in proto.graph.input:
        dims = value.type.tensor_type.shape.dim
        if value.name == INPUT_IDS:
            feed[value.name] = rng.integers(0, vocab_size, (batch, new), dtype=np.int64)
        elif value.name == POSITION_IDS:  # as after a rolled cache: beyond the past's length
            feed[value.name] = position_ids(3 * block_size, batch, new)
        elif len(dims) == 4:
            feed[value.name] = rng.standard_normal(
                (batch, dims[1].dim_value, past, dims[3].dim_value), dtype=np.float32)
        else:  # any further float input (a recurrent state): batch first, static sizes after
            shape = (batch, *(d.dim_value or 1 for d in dims[1:]))
            feed[value.name] = rng.standard_normal(shape, dtype=np.float32)
    return feed


def fuse_gpt_graph(proto: onnx.ModelProto, *, n_layer: int, n_head: int, vocab_size: int,
                   block_size: int, cache_buffers: bool = False) -> FusionReport:
    """Fuse attention and GELU in `proto` in place when the result provably computes the same;
    `cache_buffers`: with GroupQueryAttention (see the module's doc)."""
    before = len(proto.graph.node)
    candidate = onnx.ModelProto()
    candidate.CopyFrom(proto)
    try:
        attention, gelu, rotary = _rewrite(candidate, n_layer, n_head, cache_buffers)
        if attention or gelu or rotary:
            feeds = [_random_feed(proto, vocab_size, block_size, *call) for call in CHECK_CALLS]
            worst = max(float(np.abs(a - b).max()) for feed in feeds
                        for a, b in zip(_outputs(proto, feed), _outputs(candidate, feed), strict=True))
            if not worst <= CHECK_TOLERANCE:
                raise ValueError(f"fused graph differs by {worst:.3g}")
    except Exception as exc:  # onnxruntime raises untyped errors; fall back to the plain graph
        warnings.warn(f"ONNX graph fusion skipped ({exc}); the file is correct but slower",
                      RuntimeWarning, stacklevel=2)
        return FusionReport(before, before, 0, 0)
    proto.CopyFrom(candidate)
    return FusionReport(before, len(proto.graph.node), attention, gelu, rotary)
