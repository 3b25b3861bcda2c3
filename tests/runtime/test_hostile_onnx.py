"""Hostile ONNX files (issue 16): each is built in tmp_path and opened through the public entry
points, `runtime.load` and `python -m runtime.chat --model F --prompt To` (a subprocess under a
timeout, as a hang guard). Each must end in the documented one-line error with exit code 1, no
traceback, and nothing read that the user did not name: a credentials.txt sits in the working
directory, where onnxruntime resolves a relative external-data path, and its contents must never
appear."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import runtime
from export.onnx_file import save_with_checksum
from runtime.errors import ModelFileError
from runtime.onnx_file import OnnxFile, basic_session_options
from runtime.onnx_scan import OnnxScan
from runtime.tokenizer import CharTokenizer

SECRET = "hunter2-do-not-print-me"
CHAT_TIMEOUT = 120  # a hang guard only


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The working directory, holding a secret beside the hostile files."""
    (tmp_path / "credentials.txt").write_text(SECRET)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture(scope="module")
def header(exported_tiny: dict[str, Path]) -> dict[str, str]:
    """The textgen metadata of a real GPT export, checksum left out (each file gets its own)."""
    proto = onnx.load(str(exported_tiny["onnx"]))
    return {p.key: p.value for p in proto.metadata_props if p.key != "textgen.checksum"}


def stamped(proto: onnx.ModelProto, path: Path, metadata: dict[str, str]) -> Path:
    """`proto` with `metadata` and a valid checksum, as anyone can stamp one."""
    del proto.metadata_props[:]
    for key, value in metadata.items():
        proto.metadata_props.add(key=key, value=value)
    return save_with_checksum(proto, path)


def one_node_model(node: onnx.NodeProto | None = None, **graph: object) -> onnx.ModelProto:
    node = node or helper.make_node("Neg", ["x"], ["y"])
    g = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])], **graph)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)])


def refused_everywhere(path: Path, workdir: Path, message: str, kind: str = "gpt") -> None:
    """runtime.load raises `message`; the chat prints it as one line and exits 1; the secret
    beside it is never printed. A GAN takes --num-samples where the others take --prompt."""
    with pytest.raises(ModelFileError, match=message):
        runtime.load(path)
    ask = ["--num-samples", "1"] if kind == "gan" else ["--prompt", "To", "--max-new-tokens", "5"]
    result = subprocess.run([sys.executable, "-m", "runtime.chat", "--model", str(path), *ask],
                            cwd=workdir,
                            capture_output=True, text=True, timeout=CHAT_TIMEOUT,
                            errors="backslashreplace")
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr and result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("error: "), result.stderr
    assert re.search(message, result.stderr), result.stderr
    assert SECRET not in result.stdout + result.stderr
    assert "\x1b" not in result.stderr and "\x07" not in result.stderr


# --- item 1: external data, wherever a tensor can sit ---

def external(name: str = "w") -> TensorProto:
    tensor = TensorProto(name=name, data_type=TensorProto.UINT8, dims=[len(SECRET)],
                         data_location=TensorProto.EXTERNAL)
    tensor.external_data.add(key="location", value="credentials.txt")
    return tensor


def _sparse() -> onnx.SparseTensorProto:
    indices = numpy_helper.from_array(np.array([0], np.int64), "i")
    return helper.make_sparse_tensor(external("v"), indices, [len(SECRET)])


def _function(nodes: list[onnx.NodeProto], attribute_proto: list[onnx.AttributeProto] = ()
              ) -> onnx.FunctionProto:
    function = helper.make_function("", "Leak", [], ["out"], nodes, [helper.make_opsetid("", 18)])
    function.attribute_proto.extend(attribute_proto)
    return function


def _with_function(function: onnx.FunctionProto) -> onnx.ModelProto:
    model = one_node_model()
    model.graph.node.append(helper.make_node("Leak", [], ["leaked"]))
    model.functions.append(function)
    return model


def _default_attribute() -> onnx.ModelProto:
    body = helper.make_node("Constant", [], ["out"])
    body.attribute.append(onnx.AttributeProto(name="value", ref_attr_name="value",
                                              type=onnx.AttributeProto.TENSOR))
    default = helper.make_attribute("value", external("v"))
    return _with_function(_function([body], [default]))


def _training_info() -> onnx.ModelProto:
    model = one_node_model()
    init = helper.make_graph([], "init", [], [], initializer=[external()])
    model.training_info.add(initialization=init)
    return model


def _subgraph() -> onnx.ModelProto:
    inner = helper.make_graph([helper.make_node("Identity", ["w"], ["o"])], "then", [],
                              [helper.make_tensor_value_info("o", TensorProto.UINT8, [16])],
                              initializer=[external()])
    return one_node_model(helper.make_node("If", ["c"], ["y"], then_branch=inner, else_branch=inner))


PLACEMENTS: dict[str, Callable[[], onnx.ModelProto]] = {
    "initializer": lambda: one_node_model(initializer=[external()]),
    "sparse initializer": lambda: one_node_model(sparse_initializer=[_sparse()]),
    "Constant value": lambda: one_node_model(helper.make_node("Constant", [], ["y"], value=external())),
    "Constant sparse_value": lambda: one_node_model(
        helper.make_node("Constant", [], ["y"], sparse_value=_sparse())),
    "attribute tensors": lambda: one_node_model(
        helper.make_node("Neg", ["x"], ["y"], extra=[external("a"), external("b")])),
    "subgraph initializer": _subgraph,
    "function node attribute": lambda: _with_function(_function(
        [helper.make_node("Constant", [], ["out"], value=external())])),
    "function attribute default": _default_attribute,
    "training graph": _training_info,
}


@pytest.mark.parametrize("placement", PLACEMENTS)
def test_external_data_is_refused_wherever_it_sits(placement: str, header: dict[str, str],
                                                   workdir: Path) -> None:
    path = stamped(PLACEMENTS[placement](), workdir / "leak.onnx", header)
    refused_everywhere(path, workdir, "external data files")


def test_onnxruntime_itself_finds_no_external_data(header: dict[str, str], workdir: Path) -> None:
    """The second wall: were the scan to miss a reference, the session still resolves relative
    paths in an empty folder, not the working directory."""
    model = one_node_model(helper.make_node("Identity", ["w"], ["y"]), initializer=[external()])
    data = model.SerializeToString()
    checked = OnnxFile(workdir / "leak.onnx", data, OnnxScan(ops={("", "Identity")}), "gan",
                       CharTokenizer(list("ab")), {})
    with pytest.raises(ModelFileError, match="onnxruntime cannot load it") as caught:
        checked.session(basic_session_options(1))
    assert SECRET not in str(caught.value)


# --- items 3 and 4: sizes and nesting from the metadata ---

def _config(header: dict[str, str], raw: str) -> dict[str, str]:
    return {**header, "textgen.model_config": raw}


GPT_CONFIGS = {
    "a billion layers": ({"n_layer": 10**9}, "sets n_layer to 1000000000; this runtime accepts 1 to"),
    "2e6 wide": ({"n_embd": 2 * 10**6, "n_head": 2}, "sets n_embd to 2000000"),
    "1e12 context": ({"block_size": 10**12}, "sets block_size to a 13-digit number"),
    "Infinity layers": ('"n_layer": Infinity', r"lacks a valid 'n_layer' .*found inf"),
    "4,000 digits": ('"n_layer": ' + "9" * 4000, "a 4000-digit number"),
    "5,000 digits": ('"n_layer": ' + "9" * 5000, "metadata is malformed"),
    "fractional": ({"n_layer": 2.5}, r"lacks a valid 'n_layer'"),
    "a string": ({"n_layer": "2"}, r"lacks a valid 'n_layer'"),
    "a boolean": ({"n_layer": True}, r"lacks a valid 'n_layer'"),
    "more than the machine": ({"n_layer": 1024, "n_embd": 65536, "n_head": 1024,
                               "block_size": 2**20}, "GiB to generate at full context"),
}


@pytest.mark.parametrize("case", GPT_CONFIGS)
def test_gpt_sizes_are_bounded_before_anything_is_allocated(case: str, header: dict[str, str],
                                                            workdir: Path) -> None:
    change, message = GPT_CONFIGS[case]
    config = json.loads(header["textgen.model_config"])
    if isinstance(change, dict):
        raw = json.dumps({**config, **change})
    else:  # JSON that json.dumps cannot write: Infinity, thousands of digits
        key = change.split(":")[0]
        raw = json.dumps({k: v for k, v in config.items() if f'"{k}"' != key})[:-1] + ", " + change + "}"
    refused_everywhere(stamped(one_node_model(), workdir / "big.onnx", _config(header, raw)),
                       workdir, message)


WORDS = json.dumps({"type": "word", "version": 1, "lowercase": True, "words": ["<end>", "<unk>", "a"]})
OTHER_KINDS = {
    "gan seq_len": ("gan", WORDS, {"seq_len": 10**9, "n_embd": 8, "n_noise_blocks": 1, "vocab_size": 3},
                    "GAN config sets seq_len to 1000000000"),
    "gan noise": ("gan", WORDS, {"seq_len": 65536, "n_embd": 65536, "n_noise_blocks": 1024,
                                 "vocab_size": 3}, "GiB to generate"),
    "stack hidden": ("stack", None, {"block_size": 8, "vocab_size": None, "layers": [
        {"type": "Embedding", "n_embd": 8}, {"type": "LSTM", "in_features": 8,
                                             "hidden_size": 10**12}]}, "sets hidden_size to a 13"),
    "stack layers": ("stack", None, {"block_size": 8, "vocab_size": None,
                                     "layers": [{"type": "Dropout"}] * 5000}, "5,000 layers"),
}


@pytest.mark.parametrize("case", OTHER_KINDS)
def test_gan_and_stack_sizes_are_bounded(case: str, header: dict[str, str], workdir: Path) -> None:
    kind, tokenizer, config, message = OTHER_KINDS[case]
    tokenizer = tokenizer or header["textgen.tokenizer"]
    if config.get("vocab_size", 0) is None:
        config["vocab_size"] = len(json.loads(tokenizer)["chars"])
    metadata = {**header, "textgen.kind": kind, "textgen.tokenizer": tokenizer,
                "textgen.model_config": json.dumps(config)}
    refused_everywhere(stamped(one_node_model(), workdir / "big.onnx", metadata), workdir, message,
                       kind)


@pytest.mark.parametrize("key", ["textgen.model_config", "textgen.tokenizer"])
def test_deeply_nested_metadata_json(key: str, header: dict[str, str], workdir: Path) -> None:
    metadata = {**header, key: "[" * 200_000 + "]" * 200_000}
    refused_everywhere(stamped(one_node_model(), workdir / "deep.onnx", metadata), workdir,
                       "JSON nested more than 32 levels deep")


def test_two_thousand_nested_if_branches(header: dict[str, str], workdir: Path) -> None:
    # Written on the wire directly: onnx's own serialiser refuses to build this deep a message.
    def field(number: int, payload: bytes) -> bytes:
        return _varint(number << 3 | 2) + _varint(len(payload)) + payload

    graph = b""
    for _ in range(2000):  # node {op_type: "If", attribute {name: "then_branch", g: graph}}
        attribute = field(1, b"then_branch") + field(6, graph)
        graph = field(1, field(4, b"If") + field(5, attribute))
    metadata = b"".join(field(14, field(1, k.encode()) + field(2, v.encode()))
                        for k, v in header.items())
    path = workdir / "if.onnx"
    path.write_bytes(field(7, graph) + metadata)
    refused_everywhere(path, workdir, "graphs nest more than 8 deep")


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


# --- item 5: operators the exporter never writes, and failures while running ---

def _loop() -> onnx.NodeProto:
    body = helper.make_graph([helper.make_node("Identity", ["cond"], ["cond_out"])], "body",
                             [helper.make_tensor_value_info("i", TensorProto.INT64, []),
                              helper.make_tensor_value_info("cond", TensorProto.BOOL, [])],
                             [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, [])])
    return helper.make_node("Loop", ["", "c"], [], body=body)


@pytest.mark.parametrize("op", ["Loop", "ConstantOfShape"])
def test_operators_outside_the_gpt_set_are_refused(op: str, exported_tiny: dict[str, Path],
                                                   header: dict[str, str], workdir: Path) -> None:
    proto = onnx.load(str(exported_tiny["onnx"]))
    node = _loop() if op == "Loop" else helper.make_node("ConstantOfShape", ["huge"], ["zeros"])
    proto.graph.node.append(node)
    path = stamped(proto, workdir / "op.onnx", header)
    refused_everywhere(path, workdir, f"operator.*{op}.*which textgen's exporter never writes")


def test_a_failure_while_running_is_one_line(exported_tiny: dict[str, Path], header: dict[str, str],
                                             workdir: Path) -> None:
    """An embedding table of one row: the graph loads, and fails at the first token."""
    proto = onnx.load(str(exported_tiny["onnx"]))
    gather = next(n for n in proto.graph.node if n.op_type == "Gather" and n.input[1] == "input_ids")
    table = next(t for t in proto.graph.initializer if t.name == gather.input[0])
    proto.graph.initializer.append(numpy_helper.from_array(numpy_helper.to_array(table)[:1], "row"))
    gather.input[0] = "row"
    path = stamped(proto, workdir / "short.onnx", header)
    generator = runtime.load(path)
    with pytest.raises(ModelFileError, match="onnxruntime failed running it"):
        list(generator.generate("To", max_new_tokens=3))
    result = subprocess.run([sys.executable, "-m", "runtime.chat", "--model", str(path),
                             "--prompt", "To"], cwd=workdir, capture_output=True, text=True,
                            timeout=CHAT_TIMEOUT)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert "onnxruntime failed running it" in result.stderr and result.stderr.count("\n") == 1


# --- items 11, 12, 16: tokenizer text, escapes in messages, the checksum ---

def test_a_tokenizer_with_a_lone_surrogate(header: dict[str, str], workdir: Path) -> None:
    tokenizer = json.loads(header["textgen.tokenizer"])
    tokenizer["chars"][-1] = "\ud800"
    metadata = {**header, "textgen.tokenizer": json.dumps(tokenizer)}  # "\ud800" escaped in JSON
    refused_everywhere(stamped(one_node_model(), workdir / "tok.onnx", metadata), workdir,
                       "lone surrogate")


def test_escape_sequences_from_the_file_never_reach_the_terminal(header: dict[str, str],
                                                                 workdir: Path) -> None:
    node = helper.make_node("Neg", ["x"], ["y"])
    node.op_type = "\x1b]0;owned\x07\x1b[2J"  # would retitle and clear the terminal
    refused_everywhere(stamped(one_node_model(node), workdir / "esc.onnx", header), workdir,
                       "operator")
    refused_everywhere(workdir / "\x1b[2Jmissing.onnx", workdir, "model file not found")


def test_a_missing_checksum_is_refused(exported_tiny: dict[str, Path], workdir: Path) -> None:
    """The checksum entry removed and every weight zeroed: refused, not sampled from."""
    proto = onnx.load(str(exported_tiny["onnx"]))
    kept = [p for p in proto.metadata_props if p.key != "textgen.checksum"]
    del proto.metadata_props[:]
    proto.metadata_props.extend(kept)
    for tensor in proto.graph.initializer:
        tensor.CopyFrom(numpy_helper.from_array(np.zeros_like(numpy_helper.to_array(tensor)),
                                                tensor.name))
    onnx.save_model(proto, str(workdir / "zeroed.onnx"))
    refused_everywhere(workdir / "zeroed.onnx", workdir, r"carries no checksum \(textgen.checksum\)")


def test_a_fifo_as_model_is_refused_without_blocking(workdir: Path) -> None:
    os.mkfifo(workdir / "pipe.onnx")  # opening it would wait for a writer forever
    refused_everywhere(workdir / "pipe.onnx", workdir, "not a regular file")
