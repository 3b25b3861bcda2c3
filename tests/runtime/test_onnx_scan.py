"""The structure scan opens every field through which the ONNX format can hold a tensor, bounds
graph nesting, and requires the checksum."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest
from google.protobuf.descriptor import Descriptor

from runtime.errors import ModelFileError
from runtime.onnx_scan import _HOLDS, MAX_GRAPH_DEPTH, check_structure, scan_onnx, verify_checksum


def _tensor_fields() -> dict[str, dict[int, str]]:
    """For every message reachable from ModelProto that can lead to a TensorProto: its fields
    that lead there, from onnx's own descriptors."""
    seen: dict[str, Descriptor] = {}
    todo = [onnx.ModelProto.DESCRIPTOR]
    while todo:
        message = todo.pop()
        if message.full_name in seen:
            continue
        seen[message.full_name] = message
        todo.extend(f.message_type for f in message.fields if f.message_type is not None)
    leads = {"onnx.TensorProto"}
    while True:  # a fixed point: GraphProto, NodeProto and AttributeProto refer to each other
        more = {name for name, m in seen.items() if any(
            f.message_type is not None and f.message_type.full_name in leads for f in m.fields)}
        if more <= leads:
            break
        leads |= more
    return {seen[name].name: {f.number: f.message_type.name for f in seen[name].fields
                              if f.message_type is not None and f.message_type.full_name in leads}
            for name in leads}


def test_the_scan_opens_every_field_that_can_hold_a_tensor() -> None:
    assert _tensor_fields() == _HOLDS


def _nested_if_model(depth: int) -> bytes:
    graph = onnx.helper.make_graph([], "leaf", [], [])
    for _ in range(depth):
        node = onnx.helper.make_node("If", ["c"], [], then_branch=graph, else_branch=graph)
        graph = onnx.helper.make_graph([node], "g", [], [])
    return onnx.helper.make_model(graph).SerializeToString()


def test_graph_nesting_is_bounded_without_recursion() -> None:
    assert scan_onnx(_nested_if_model(MAX_GRAPH_DEPTH - 1)).graph_depth == MAX_GRAPH_DEPTH
    with pytest.raises(ModelFileError, match=f"nest more than {MAX_GRAPH_DEPTH} deep"):
        scan_onnx(_nested_if_model(MAX_GRAPH_DEPTH))


def test_a_missing_checksum_is_refused(exported_tiny: dict[str, Path]) -> None:
    proto = onnx.load(str(exported_tiny["onnx"]))
    data = exported_tiny["onnx"].read_bytes()
    verify_checksum(data, check_structure(data))
    kept = [p for p in proto.metadata_props if p.key != "textgen.checksum"]
    del proto.metadata_props[:]
    proto.metadata_props.extend(kept)
    stripped = proto.SerializeToString()
    with pytest.raises(ModelFileError, match=r"carries no checksum \(textgen.checksum\)"):
        verify_checksum(stripped, check_structure(stripped))
