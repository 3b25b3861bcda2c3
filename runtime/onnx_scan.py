"""Check an ONNX file's structure before onnxruntime touches it, with no dependency but Python.

onnxruntime follows external-data references and loads custom-operator domains when it opens a
file, so those must be refused *before* a session exists. This module walks the protobuf wire
format of the ModelProto directly (field numbers from onnx.proto3) and opens every message that
can hold a `TensorProto`, wherever it sits: graph initializers and sparse initializers, node
attributes (`t`, `tensors`, `sparse_tensor(s)`, subgraphs `g`/`graphs` at any depth), model-local
functions (their nodes and their attributes' default values, `attribute_proto`) and training
graphs (`training_info`). `_HOLDS` lists those fields; tests/runtime/test_onnx_scan.py checks it
against onnx's own descriptors, so a field added to the format cannot slip past. It reports:

- every operator used, as (domain, op_type), for the per-kind allow-list (runtime/onnx_ops.py);
- tensors whose data lives outside the file (`external_data`, or any `data_location` but the
  default);
- model-local functions and training graphs, which textgen's exporter never writes;
- metadata_props (so the textgen header can be read without onnxruntime);
- structural damage: a truncated or garbled file fails to parse, and graphs nested deeper than
  `MAX_GRAPH_DEPTH` are refused (the walk is iterative, so no depth ends in a RecursionError).

`verify_checksum` checks the sha256 the exporter stamps into `textgen.checksum`, so a bit flip
anywhere in the file (a weight included) is reported instead of silently sampled from; a file
without one is refused, since every textgen export carries it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from runtime.contract import KEY_CHECKSUM
from runtime.errors import ModelFileError

ALLOWED_DOMAINS = frozenset({"", "ai.onnx", "ai.onnx.ml", "com.microsoft"})
CHECKSUM_KEY = KEY_CHECKSUM
CHECKSUM_PLACEHOLDER = b"0" * 64
# StringStringEntryProto {key = 1: "textgen.checksum", value = 2: <64 bytes>} as serialised.
CHECKSUM_PREFIX = b"\x0a" + bytes([len(CHECKSUM_KEY)]) + CHECKSUM_KEY.encode() + b"\x12\x40"
# textgen graphs are flat (depth 1: no If, Loop or Scan); a few levels leave room for a valid
# file from elsewhere to get its own precise refusal instead of this one.
MAX_GRAPH_DEPTH = 8

_VARINT, _I64, _LEN, _I32 = 0, 1, 2, 5

# For each message the walk opens: field number -> the message type it holds. These are all the
# fields of onnx.proto3 through which a TensorProto can be reached from a ModelProto.
_HOLDS: dict[str, dict[int, str]] = {
    "ModelProto": {7: "GraphProto", 20: "TrainingInfoProto", 25: "FunctionProto"},
    "TrainingInfoProto": {1: "GraphProto", 2: "GraphProto"},
    "GraphProto": {1: "NodeProto", 5: "TensorProto", 15: "SparseTensorProto"},
    "NodeProto": {5: "AttributeProto"},
    "FunctionProto": {7: "NodeProto", 11: "AttributeProto"},
    "AttributeProto": {5: "TensorProto", 6: "GraphProto", 10: "TensorProto", 11: "GraphProto",
                       22: "SparseTensorProto", 23: "SparseTensorProto"},
    "SparseTensorProto": {1: "TensorProto", 2: "TensorProto"},
    "TensorProto": {},
}
_MODEL_GRAPH, _MODEL_METADATA, _MODEL_TRAINING_INFO, _MODEL_FUNCTIONS = 7, 14, 20, 25
_NODE_OP_TYPE, _NODE_DOMAIN = 4, 7
_TENSOR_EXTERNAL_DATA, _TENSOR_DATA_LOCATION = 13, 14
_ENTRY_KEY, _ENTRY_VALUE = 1, 2


class _Truncated(Exception):
    pass


class _Refused(Exception):
    """Well-formed, but not something a textgen file holds; the message says what."""


@dataclass
class OnnxScan:
    domains: set[str] = field(default_factory=set)
    ops: set[tuple[str, str]] = field(default_factory=set)  # (domain, op_type) of every node
    external_tensors: int = 0
    functions: int = 0
    training_graphs: int = 0
    graph_depth: int = 0
    metadata: dict[str, str] = field(default_factory=dict)


def _fields(buf: memoryview):
    """Yield (field number, wire type, value) of one message; LEN values are memoryviews."""
    pos, end = 0, len(buf)
    while pos < end:
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise _Truncated("field number 0")
        if wire == _VARINT:
            value, pos = _varint(buf, pos)
        elif wire == _I64:
            if pos + 8 > end:
                raise _Truncated("fixed64 past the end")
            value, pos = None, pos + 8
        elif wire == _I32:
            if pos + 4 > end:
                raise _Truncated("fixed32 past the end")
            value, pos = None, pos + 4
        elif wire == _LEN:
            length, pos = _varint(buf, pos)
            if pos + length > end:
                raise _Truncated("length-delimited field past the end")
            value, pos = buf[pos : pos + length], pos + length
        else:
            raise _Truncated(f"wire type {wire}")
        yield number, wire, value


def _varint(buf: memoryview, pos: int) -> tuple[int, int]:
    result, shift = 0, 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise _Truncated("varint past the end")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _text(value: memoryview) -> str:
    return bytes(value).decode("utf-8", "replace")


def _is_external(number: int, wire: int, value: object) -> bool:
    """A TensorProto field that sends the reader outside the file: any external_data entry, or a
    data_location other than DEFAULT (0) in whatever encoding."""
    return number == _TENSOR_EXTERNAL_DATA or (
        number == _TENSOR_DATA_LOCATION and not (wire == _VARINT and value == 0))


def _metadata_entry(value: memoryview, scan: OnnxScan) -> None:
    entry = {n: _text(v) for n, w, v in _fields(value) if w == _LEN}
    key = entry.get(_ENTRY_KEY, "")
    if key in scan.metadata and key.startswith("textgen."):
        # protobuf keeps both; readers disagree on which wins, so neither is trusted.
        raise _Refused(f"its metadata key {key!r} appears twice")
    scan.metadata[key] = entry.get(_ENTRY_VALUE, "")


def scan_onnx(data: bytes) -> OnnxScan:
    """Structure of a serialised ModelProto; raises ModelFileError when it does not parse."""
    scan = OnnxScan()
    saw_graph = False
    # (message type, its bytes, how many graphs enclose it); iterative, so depth costs no stack.
    pending: list[tuple[str, memoryview, int]] = [("ModelProto", memoryview(data), 0)]
    try:
        while pending:
            kind, buf, depth = pending.pop()
            holds = _HOLDS[kind]
            domain, op_type = "", ""
            for number, wire, value in _fields(buf):
                if kind == "TensorProto":
                    if _is_external(number, wire, value):
                        scan.external_tensors += 1
                        break
                    continue
                if wire != _LEN:
                    continue
                if kind == "NodeProto" and number in (_NODE_OP_TYPE, _NODE_DOMAIN):
                    if number == _NODE_OP_TYPE:
                        op_type = _text(value)
                    else:
                        domain = _text(value)
                    continue
                if kind == "ModelProto":
                    if number == _MODEL_METADATA:
                        _metadata_entry(value, scan)
                    saw_graph |= number == _MODEL_GRAPH
                    scan.functions += number == _MODEL_FUNCTIONS
                    scan.training_graphs += number == _MODEL_TRAINING_INFO
                held = holds.get(number)
                if held is None:
                    continue
                inner = depth + (held == "GraphProto")
                if inner > MAX_GRAPH_DEPTH:
                    raise _Refused(f"its graphs nest more than {MAX_GRAPH_DEPTH} deep (textgen "
                                   "graphs are flat); refusing it")
                scan.graph_depth = max(scan.graph_depth, inner)
                pending.append((held, value, inner))
            if kind == "NodeProto":
                scan.domains.add(domain)
                scan.ops.add((domain, op_type))
    except _Truncated as exc:
        raise ModelFileError(f"the file is truncated or corrupt (protobuf: {exc})") from None
    except _Refused as exc:
        raise ModelFileError(str(exc)) from None
    if not saw_graph:
        raise ModelFileError("the file holds no ONNX graph")
    return scan


def check_structure(data: bytes) -> OnnxScan:
    """scan_onnx, then refuse external data, custom operator domains, model-local functions and
    training graphs."""
    scan = scan_onnx(data)
    if scan.external_tensors:
        raise ModelFileError(
            f"the model keeps {scan.external_tensors} tensor(s) in external data files; "
            "textgen only runs self-contained .onnx files (external paths could point anywhere)"
        )
    custom = sorted(scan.domains - ALLOWED_DOMAINS)
    if custom:
        raise ModelFileError(
            f"the model uses custom operator domain(s) {', '.join(map(repr, custom[:4]))}, which "
            "need code outside onnxruntime; refusing it"
        )
    if scan.functions or scan.training_graphs:
        raise ModelFileError(
            "the model defines model-local functions or training graphs, which textgen's "
            "exporter never writes; refusing it"
        )
    return scan


def checksum_of(data: bytes) -> str | None:
    """sha256 of the file with its checksum value zeroed, or None when it carries no checksum."""
    at = data.find(CHECKSUM_PREFIX)
    if at < 0:
        return None
    start = at + len(CHECKSUM_PREFIX)
    blanked = data[:start] + CHECKSUM_PLACEHOLDER + data[start + 64 :]
    return hashlib.sha256(blanked).hexdigest()


def verify_checksum(data: bytes, scan: OnnxScan) -> None:
    stored = scan.metadata.get(CHECKSUM_KEY)
    if stored is None:
        raise ModelFileError(
            f"the file carries no checksum ({CHECKSUM_KEY}), which every textgen export "
            "stamps; it was altered after export or written by something else; export it again"
        )
    if checksum_of(data) != stored:
        raise ModelFileError(
            "the file's checksum does not match its contents (it was modified or damaged after "
            "export); export it again"
        )
