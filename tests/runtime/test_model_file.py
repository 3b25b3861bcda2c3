from pathlib import Path

import onnx
import pytest
from onnx import TensorProto, helper

import runtime
from export.onnx_file import save_with_checksum
from runtime.errors import ModelFileError


def textgen_metadata(source: Path) -> dict[str, str]:
    return {p.key: p.value for p in onnx.load(str(source)).metadata_props if p.key != "textgen.checksum"}


def identity_model(path: Path, metadata: dict[str, str] | None = None, domain: str = "",
                   op: str = "Identity") -> Path:
    """A one-node graph with `metadata` and a valid checksum, as anyone can stamp one."""
    node = helper.make_node(op, ["x"], ["y"], domain=domain)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    opsets = [helper.make_opsetid("", 18)] + ([helper.make_opsetid(domain, 1)] if domain else [])
    model = helper.make_model(graph, opset_imports=opsets)
    for key, value in (metadata or {}).items():
        model.metadata_props.add(key=key, value=value)
    return save_with_checksum(model, path)


def refused(path: Path, message: str) -> None:
    with pytest.raises(ModelFileError, match=message):
        runtime.load(path)


def test_missing_directory_empty_and_garbage(tmp_path: Path) -> None:
    refused(tmp_path / "none.onnx", "model file not found")
    refused(tmp_path, "is a directory")
    (tmp_path / "empty.onnx").write_bytes(b"")
    refused(tmp_path / "empty.onnx", "the file is empty")
    (tmp_path / "notes.onnx").write_text("these are not the weights you are looking for\n" * 20)
    refused(tmp_path / "notes.onnx", "not a usable ONNX model file")


def test_truncated_and_bit_flipped_copies(exported_tiny: dict[str, Path], tmp_path: Path) -> None:
    data = exported_tiny["onnx"].read_bytes()
    (tmp_path / "cut.onnx").write_bytes(data[: len(data) * 2 // 3])
    refused(tmp_path / "cut.onnx", "truncated or corrupt")
    flipped = bytearray(data)
    flipped[len(data) - 5000] ^= 0x10  # inside the weights
    (tmp_path / "flip.onnx").write_bytes(bytes(flipped))
    refused(tmp_path / "flip.onnx", "checksum does not match")


def test_onnx_model_that_is_not_ours(tmp_path: Path) -> None:
    refused(identity_model(tmp_path / "other.onnx"), "not a textgen model")


def test_our_metadata_on_a_graph_that_breaks_the_contract(exported_tiny: dict[str, Path], tmp_path: Path) -> None:
    fake = identity_model(tmp_path / "fake.onnx", textgen_metadata(exported_tiny["onnx"]), op="Neg")
    refused(fake, "inputs do not follow the textgen contract")


def test_renamed_input_is_refused(exported_tiny: dict[str, Path], tmp_path: Path) -> None:
    proto = onnx.load(str(exported_tiny["onnx"]))
    old = proto.graph.input[0].name
    proto.graph.input[0].name = "tokens"
    for node in proto.graph.node:
        node.input[:] = ["tokens" if n == old else n for n in node.input]
    save_with_checksum(proto, tmp_path / "renamed.onnx")
    refused(tmp_path / "renamed.onnx", r"missing \['input_ids'\]")


def test_custom_operator_domain_is_refused(exported_tiny: dict[str, Path], tmp_path: Path) -> None:
    path = identity_model(tmp_path / "custom.onnx", textgen_metadata(exported_tiny["onnx"]), domain="evil.ops")
    refused(path, "custom operator domain.*evil.ops")


def test_external_data_is_refused_before_it_is_read(exported_tiny: dict[str, Path], tmp_path: Path) -> None:
    proto = onnx.load(str(exported_tiny["onnx"]))
    onnx.save_model(proto, str(tmp_path / "ext.onnx"), save_as_external_data=True,
                    all_tensors_to_one_file=True, location="weights.bin", size_threshold=0)
    (tmp_path / "weights.bin").unlink()  # pointing nowhere: reading it would fail differently
    refused(tmp_path / "ext.onnx", "external data")
