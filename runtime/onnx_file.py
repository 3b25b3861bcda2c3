"""Open a textgen ONNX file and hold it to the checks every kind shares, before any sampling.

Checks, in order, each failure a one-line ModelFileError naming the file: it exists and is a file;
its protobuf structure parses, with no external data and no custom operator domains (done on the
bytes, before onnxruntime sees them); it carries textgen metadata of a supported version and kind;
it holds the kind the caller opens; its checksum matches; onnxruntime accepts it. The session is
created from the checked bytes, so what runs is exactly what was checked. Each kind then checks
its own inputs and outputs with `check_io` (runtime/model_file.py, gan_model.py, stack_model.py).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import onnxruntime as ort

from runtime.errors import ModelFileError, TokenizerError
from runtime.onnx_scan import OnnxScan, check_structure, verify_checksum
from runtime.tokenizer import CharTokenizer, tokenizer_from_dict

ONNX_FORMAT = "textgen-onnx"
SUPPORTED_VERSIONS = ("1",)
SUPPORTED_KINDS = ("gpt", "gan", "stack")
FLOAT, INT32, INT64 = "tensor(float)", "tensor(int32)", "tensor(int64)"


def fail(path: Path, reason: str) -> ModelFileError:
    return ModelFileError(f"{path}: {reason}")


def read_model_bytes(path: Path) -> bytes:
    if not path.exists():
        raise ModelFileError(f"model file not found: {path}")
    if path.is_dir():
        raise ModelFileError(f"{path} is a directory, not an ONNX model file")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelFileError(f"cannot read {path}: {exc.strerror or exc}") from None
    if not data:
        raise fail(path, "the file is empty")
    return data


def _metadata(path: Path, metadata: dict[str, str]) -> tuple[str, CharTokenizer, dict[str, Any]]:
    if metadata.get("textgen.format") != ONNX_FORMAT:
        raise fail(path, "an ONNX model, but not a textgen model (no textgen metadata)")
    version = metadata.get("textgen.format_version")
    if version not in SUPPORTED_VERSIONS:
        raise fail(path, f"textgen ONNX format version {version!r} is not supported "
                         f"(this runtime reads {', '.join(SUPPORTED_VERSIONS)})")
    kind = metadata.get("textgen.kind")
    if kind not in SUPPORTED_KINDS:
        raise fail(path, f"holds a {kind!r} model; this runtime samples: {', '.join(SUPPORTED_KINDS)}")
    try:
        tokenizer = tokenizer_from_dict(json.loads(metadata.get("textgen.tokenizer", "")))
        config = json.loads(metadata.get("textgen.model_config", ""))
    except (ValueError, TokenizerError) as exc:
        raise fail(path, f"its textgen metadata is malformed ({exc})") from None
    if not isinstance(config, dict):
        raise fail(path, "its model config metadata is not a JSON object")
    return kind, tokenizer, config


@dataclass(frozen=True)
class OnnxFile:
    """A file's bytes and textgen header, read and scanned; `read_textgen_onnx` makes one."""

    path: Path
    data: bytes
    scan: OnnxScan
    kind: str
    tokenizer: CharTokenizer
    config: dict[str, Any]

    def verify_checksum(self) -> None:
        try:
            verify_checksum(self.data, self.scan)
        except ModelFileError as exc:
            raise fail(self.path, str(exc)) from None

    def session(self, options: ort.SessionOptions) -> ort.InferenceSession:
        """An onnxruntime session built from the checked bytes."""
        try:
            return ort.InferenceSession(self.data, options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own untyped errors for bad graphs
            first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
            raise fail(self.path, f"onnxruntime cannot load it ({first})") from None


def read_textgen_onnx(path: Path, kind: str, not_kind: str) -> OnnxFile:
    """Read, scan and parse the header of a file that must hold a `kind` model (`not_kind` ends
    the message otherwise). The checksum is the caller's next step, after any check of its own
    on the header (`OnnxFile.verify_checksum`)."""
    data = read_model_bytes(path)
    try:
        scan = check_structure(data)
    except ModelFileError as exc:
        raise fail(path, f"not a usable ONNX model file: {exc}") from None
    found, tokenizer, config = _metadata(path, scan.metadata)
    if found != kind:
        raise fail(path, f"holds a {found!r} model, {not_kind}")
    return OnnxFile(path, data, scan, found, tokenizer, config)


def model_kind(path: str | Path) -> str | None:
    """The `textgen.kind` of an ONNX file, or None when it cannot be read (the full loader then
    reports why)."""
    try:
        return check_structure(read_model_bytes(Path(path))).metadata.get("textgen.kind")
    except ModelFileError:
        return None


SPIN_VARIABLE = "TEXTGEN_SPIN"


def basic_session_options(threads: int | None) -> ort.SessionOptions:
    """onnxruntime's defaults, quiet, with `threads` intra-op threads when given.

    Worker threads spin between kernels, as onnxruntime does by default: a token is ~50 short
    kernels, and waking a sleeping worker for each made batch-1 decoding 1.3x slower on an idle
    machine (docs/performance.md). Where other processes hold the cores, spinning workers
    fight them (decoding measured ~2x slower); TEXTGEN_SPIN=0 makes the workers sleep instead."""
    options = ort.SessionOptions()
    options.log_severity_level = 3
    if threads:
        options.intra_op_num_threads = threads
    if os.environ.get(SPIN_VARIABLE, "1").strip() == "0":
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


@dataclass(frozen=True)
class Port:
    """What the contract expects of one input or output: element type, rank, and sizes on some
    axes. A symbolic size passes a `static` check unless `fixed` (a graph traced at one length)."""

    dtype: str
    rank: int
    static: dict[int, int] | None = None
    fixed: bool = False


def check_io(path: Path, session: ort.InferenceSession, contract: str,
             inputs: dict[str, Port], outputs: dict[str, Port]) -> None:
    """The session's inputs and outputs are exactly `inputs` and `outputs`, with their types,
    ranks and static sizes; `contract` names the contract in the message."""
    for kind, actual, expected in (("input", session.get_inputs(), inputs),
                                   ("output", session.get_outputs(), outputs)):
        names = [a.name for a in actual]
        if sorted(names) != sorted(expected):
            missing = sorted(set(expected) - set(names))
            extra = sorted(set(names) - set(expected))
            raise fail(path, f"its {kind}s do not follow the {contract} "
                             f"(missing {missing[:4]}, unexpected {extra[:4]})")
        for arg in actual:
            port = expected[arg.name]
            if arg.type != port.dtype or len(arg.shape) != port.rank:
                raise fail(path, f"{kind} {arg.name} is {arg.type} of rank {len(arg.shape)}, "
                                 f"expected {port.dtype} of rank {port.rank}")
            for axis, size in (port.static or {}).items():
                if arg.shape[axis] != size and (isinstance(arg.shape[axis], int) or port.fixed):
                    raise fail(path, f"{kind} {arg.name} has size {arg.shape[axis]} on axis "
                                     f"{axis}, the config says {size}")
