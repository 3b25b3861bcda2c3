"""Check an ONNX file's structure before onnxruntime touches it, with no dependency but Python.

onnxruntime follows external-data references and loads custom-operator domains when it opens a
file, so those must be refused *before* a session exists. This module walks the protobuf wire
format of the ModelProto directly (field numbers from onnx.proto3) and reports:

- operator domains used by nodes (the default ones and onnxruntime's built-in `com.microsoft`
  are allowed; anything else needs a custom-op library and is refused);
- tensors whose data lives outside the file (`data_location = EXTERNAL` or `external_data`);
- metadata_props (so the textgen header can be read without onnxruntime);
- structural damage: a truncated or garbled file fails to parse.

`verify_checksum` checks the sha256 the exporter stamps into `textgen.checksum`, so a bit flip
anywhere in the file (a weight included) is reported instead of silently sampled from.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from runtime.errors import ModelFileError

ALLOWED_DOMAINS = frozenset({"", "ai.onnx", "ai.onnx.ml", "com.microsoft"})
CHECKSUM_KEY = "textgen.checksum"
CHECKSUM_PLACEHOLDER = b"0" * 64
# StringStringEntryProto {key = 1: "textgen.checksum", value = 2: <64 bytes>} as serialised.
CHECKSUM_PREFIX = b"\x0a" + bytes([len(CHECKSUM_KEY)]) + CHECKSUM_KEY.encode() + b"\x12\x40"

_VARINT, _I64, _LEN, _I32 = 0, 1, 2, 5

# Field numbers (onnx.proto3).
_MODEL_GRAPH, _MODEL_METADATA, _MODEL_FUNCTIONS, _MODEL_OPSET = 7, 14, 25, 8
_GRAPH_NODE, _GRAPH_INITIALIZER, _GRAPH_SPARSE_INITIALIZER = 1, 5, 15
_NODE_ATTRIBUTE, _NODE_DOMAIN = 5, 7
_ATTR_T, _ATTR_G, _ATTR_TENSORS, _ATTR_GRAPHS, _ATTR_SPARSE_TENSOR = 5, 6, 10, 11, 22
_TENSOR_EXTERNAL_DATA, _TENSOR_DATA_LOCATION = 13, 14
_SPARSE_VALUES, _SPARSE_INDICES = 1, 2
_FUNCTION_NODE = 7
_ENTRY_KEY, _ENTRY_VALUE = 1, 2


class _Truncated(Exception):
    pass


@dataclass
class OnnxScan:
    domains: set[str] = field(default_factory=set)
    external_tensors: int = 0
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


def _scan_tensor(buf: memoryview, scan: OnnxScan) -> None:
    for number, wire, value in _fields(buf):
        if (number == _TENSOR_EXTERNAL_DATA and wire == _LEN) or (
            number == _TENSOR_DATA_LOCATION and wire == _VARINT and value == 1
        ):
            scan.external_tensors += 1
            return


def _scan_sparse(buf: memoryview, scan: OnnxScan) -> None:
    for number, wire, value in _fields(buf):
        if number in (_SPARSE_VALUES, _SPARSE_INDICES) and wire == _LEN:
            _scan_tensor(value, scan)


def _scan_node(buf: memoryview, scan: OnnxScan) -> None:
    domain = ""
    for number, wire, value in _fields(buf):
        if number == _NODE_DOMAIN and wire == _LEN:
            domain = bytes(value).decode("utf-8", "replace")
        elif number == _NODE_ATTRIBUTE and wire == _LEN:
            for a_number, a_wire, a_value in _fields(value):
                if a_wire != _LEN:
                    continue
                if a_number in (_ATTR_T, _ATTR_TENSORS):
                    _scan_tensor(a_value, scan)
                elif a_number in (_ATTR_G, _ATTR_GRAPHS):
                    _scan_graph(a_value, scan)
                elif a_number == _ATTR_SPARSE_TENSOR:
                    _scan_sparse(a_value, scan)
    scan.domains.add(domain)


def _scan_graph(buf: memoryview, scan: OnnxScan) -> None:
    for number, wire, value in _fields(buf):
        if wire != _LEN:
            continue
        if number == _GRAPH_NODE:
            _scan_node(value, scan)
        elif number == _GRAPH_INITIALIZER:
            _scan_tensor(value, scan)
        elif number == _GRAPH_SPARSE_INITIALIZER:
            _scan_sparse(value, scan)


def scan_onnx(data: bytes) -> OnnxScan:
    """Structure of a serialised ModelProto; raises ModelFileError when it does not parse."""
    scan = OnnxScan()
    saw_graph = False
    try:
        for number, wire, value in _fields(memoryview(data)):
            if wire != _LEN:
                continue
            if number == _MODEL_GRAPH:
                saw_graph = True
                _scan_graph(value, scan)
            elif number == _MODEL_FUNCTIONS:
                for f_number, f_wire, f_value in _fields(value):
                    if f_number == _FUNCTION_NODE and f_wire == _LEN:
                        _scan_node(f_value, scan)
            elif number == _MODEL_METADATA:
                entry = {n: bytes(v).decode("utf-8", "replace") for n, w, v in _fields(value) if w == _LEN}
                scan.metadata[entry.get(_ENTRY_KEY, "")] = entry.get(_ENTRY_VALUE, "")
    except _Truncated as exc:
        raise ModelFileError(f"the file is truncated or corrupt (protobuf: {exc})") from None
    if not saw_graph:
        raise ModelFileError("the file holds no ONNX graph")
    return scan


def check_structure(data: bytes) -> OnnxScan:
    """scan_onnx, then refuse external data and custom operator domains."""
    scan = scan_onnx(data)
    if scan.external_tensors:
        raise ModelFileError(
            f"the model keeps {scan.external_tensors} tensor(s) in external data files; "
            "textgen only runs self-contained .onnx files (external paths could point anywhere)"
        )
    custom = sorted(scan.domains - ALLOWED_DOMAINS)
    if custom:
        raise ModelFileError(
            f"the model uses custom operator domain(s) {', '.join(custom)}, which need code "
            "outside onnxruntime; refusing it"
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
        return
    if checksum_of(data) != stored:
        raise ModelFileError(
            "the file's checksum does not match its contents (it was modified or damaged after "
            "export); export it again"
        )
