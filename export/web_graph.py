"""The GPT graph the web page runs: the exported graph with each layer's new keys and values as
extra outputs, so the page's cache stays in fixed buffers of its own.

onnxruntime-web copies every fetched output out of WebAssembly memory into a fresh JavaScript
array, and every input in. Fetching the whole `present` cache each token doubles that traffic and
allocates it anew: at the quick start's shape (4 x 128, context 128) ~0.3 ms of a ~0.7 ms token
in Chromium. A GroupQueryAttention graph (rotary positions, export/onnx_fusion.py) reads only the
valid positions of a longer past (`seqlens_k`), which is how runtime/gpt.py's CacheBuffers keep
their cache in place; the page does the same with one Float32Array per layer and part, of
block_size positions, fed as the past every call, and writes into it the new positions the graph
now also outputs: `new.{i}.key|value` [b, s, n_head * head_size], the attention's own key and
value inputs (keys already rotated), renamed so. Nothing else changes: every node and weight of
the checked file stays, so the Python runtime's parity with torch holds for it.

`check_web_graph` proves both halves before the folder is written: the new outputs equal the
present's new positions, and a past buffer longer than its valid positions (the rest filled with
noise) gives the logits of the exact past. A learned-position graph (MultiHeadAttention, which
reads its whole past) keeps the plain interface and the page fetches its present.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import helper

from export.errors import ExportMismatchError
from export.parity import FP32_TOLERANCE, onnx_feed, open_session
from runtime.contract import CACHE_PARTS, LOGITS, present_name
from runtime.gpt import attention_lengths

NEW_FORMAT = "new.%d.{}"  # the web graph's extra outputs, per part


def new_name(layer: int, part: str) -> str:
    return NEW_FORMAT.format(part) % layer


def new_names(n_layer: int) -> list[str]:
    return [new_name(i, part) for i in range(n_layer) for part in CACHE_PARTS]


def add_new_cache_outputs(proto: onnx.ModelProto, n_layer: int, width: int) -> bool:
    """Add `new.{i}.key|value` to a GroupQueryAttention graph in place; False (and `proto`
    unchanged) for any other graph."""
    producer = {out: node for node in proto.graph.node for out in node.output}
    attention = [producer.get(present_name(i, "key")) for i in range(n_layer)]
    if not all(node is not None and node.op_type == "GroupQueryAttention"
               and list(node.output[1:3]) == [present_name(i, part) for part in CACHE_PARTS]
               for i, node in enumerate(attention)):
        return False
    # The values are renamed rather than copied by an Identity node: one kernel less per output
    # and token.
    renames = {value: new_name(i, part) for i, node in enumerate(attention)
               for part, value in zip(CACHE_PARTS, node.input[1:3], strict=True)}
    if len(renames) != 2 * n_layer or set(renames) & {v.name for v in proto.graph.input}:
        return False
    for node in proto.graph.node:
        node.input[:] = [renames.get(name, name) for name in node.input]
        node.output[:] = [renames.get(name, name) for name in node.output]
    kept_info = [v for v in proto.graph.value_info if v.name not in renames]
    del proto.graph.value_info[:]
    proto.graph.value_info.extend(kept_info)
    for name in renames.values():
        proto.graph.output.append(helper.make_tensor_value_info(
            name, onnx.TensorProto.FLOAT, ["batch", "sequence", width]))
    return True


def remove_new_cache_outputs(proto: onnx.ModelProto) -> None:
    """`add_new_cache_outputs` undone as far as the Python runtime cares, in place: without the
    extra outputs (its interface check refuses outputs it does not know); the renamed values
    keep their new names. The tests compare the page with the Python runtime on it."""
    kept_outputs = [o for o in proto.graph.output if not o.name.startswith("new.")]
    del proto.graph.output[:]
    proto.graph.output.extend(kept_outputs)


def check_web_graph(path: Path, n_layer: int, n_head: int, head_size: int, block_size: int,
                    vocab_size: int) -> float:
    """Max |Δ| of the two promises in the module's doc, on random inputs (batch 1, a past of
    three positions, two new tokens); ExportMismatchError beyond fp32 tolerance."""
    session = open_session(path)
    rng = np.random.default_rng(0)
    past_length, count = min(3, block_size - 3), 2
    ids = rng.integers(0, vocab_size, (1, count), dtype=np.int64)
    past = [rng.standard_normal((1, n_head, past_length, head_size), dtype=np.float32)
            for _ in range(2 * n_layer)]
    outputs = [LOGITS, *(present_name(i, p) for i in range(n_layer) for p in CACHE_PARTS),
               *new_names(n_layer)]
    logits, *rest = session.run(outputs, onnx_feed(session, ids, past))
    presents, news = rest[:2 * n_layer], rest[2 * n_layer:]
    worst = max(float(np.abs(present[:, :, past_length:]
                             - new.reshape(1, count, n_head, head_size).transpose(0, 2, 1, 3)).max())
                for present, new in zip(presents, news, strict=True))
    buffers = [np.concatenate([p, rng.standard_normal((1, n_head, block_size - past_length, head_size),
                                                      dtype=np.float32)], axis=2) for p in past]
    feed = {**onnx_feed(session, ids, buffers, position=past_length),
            **attention_lengths(past_length, 1, count)}
    (buffered,) = session.run([LOGITS], feed)
    worst = max(worst, float(np.abs(buffered - logits).max()))
    if not worst <= FP32_TOLERANCE:
        raise ExportMismatchError(f"the web graph of {path.name} disagrees with its checked graph: max |Δ| "
                                  f"{worst:.3g} exceeds {FP32_TOLERANCE:.0e}; the folder was not written")
    return worst
