"""Open a textgen ONNX file and hold it to the checks every kind shares, before any sampling.

Checks, in order, each failure a one-line ModelFileError naming the file: it exists and is a file;
its protobuf structure parses, with no external data and no custom operator domains (done on the
bytes, before onnxruntime sees them); it carries textgen metadata of a supported version and kind;
it holds the kind the caller opens; its checksum is there and matches; every operator is one
the exporter writes for that kind (runtime/onnx_ops.py); onnxruntime accepts it. The JSON in the
metadata is parsed with its nesting bounded (`MAX_JSON_DEPTH`). The session is created from the
checked bytes, so what runs is exactly what was checked, and with onnxruntime's external-data
folder pointed at an empty temporary directory, so even a reference the scan missed would find
nothing to read. Errors onnxruntime raises while running the graph become a one-line
ModelFileError too (`CheckedSession`). Each kind then bounds the sizes its config declares
(runtime/model_limits.py) and checks its own inputs and outputs with `check_io`
(runtime/gpt.py, gan.py, stack.py).
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import onnxruntime as ort
from onnxruntime.capi import onnxruntime_pybind11_state as _ort_state

from runtime.contract import KEY_FORMAT, KEY_FORMAT_VERSION, KEY_KIND, KEY_MODEL_CONFIG, KEY_TOKENIZER, KINDS
from runtime.errors import ModelFileError, TokenizerError
from runtime.onnx_ops import check_ops
from runtime.onnx_scan import OnnxScan, check_structure, verify_checksum
from runtime.regular_file import NotRegularFileError, open_regular
from runtime.tokenizer import CharTokenizer, tokenizer_from_dict

ONNX_FORMAT = "textgen-onnx"
SUPPORTED_VERSIONS = ("1",)
SUPPORTED_KINDS = KINDS
FLOAT, INT32, INT64 = "tensor(float)", "tensor(int32)", "tensor(int64)"
# The exporter's JSON nests 3 deep (a stack config's layer list); json.loads recurses per level.
MAX_JSON_DEPTH = 32
# One left-to-right pass over the characters that matter: an escape pair, a quote, a bracket.
# (A pattern that matches whole strings backtracks from every quote of an unterminated one, so
# its time grew with the square of the escaped quotes in a metadata value.)
_JSON_TOKEN = re.compile(r'\\.|["\[\]{}]', re.DOTALL)
# What onnxruntime raises from a run: its own exception types, and what pybind11 turns a C++
# exception or a failed allocation into.
ORT_ERRORS: tuple[type[BaseException], ...] = (
    *(c for c in vars(_ort_state).values() if isinstance(c, type) and issubclass(c, Exception)),
    RuntimeError, MemoryError)


def fail(path: Path, reason: str) -> ModelFileError:
    return ModelFileError(f"{path}: {reason}")


def read_model_bytes(path: Path) -> bytes:
    if not path.exists():
        raise ModelFileError(f"model file not found: {path}")
    if path.is_dir():
        raise ModelFileError(f"{path} is a directory, not an ONNX model file")
    try:
        with open_regular(path) as f:  # a FIFO would block the read, a device never end it
            data = f.read()
    except NotRegularFileError:
        raise ModelFileError(f"{path} is not a regular file, so not an ONNX model file") from None
    except OSError as exc:
        raise ModelFileError(f"cannot read {path}: {exc.strerror or exc}") from None
    if not data:
        raise fail(path, "the file is empty")
    return data


def json_depth(text: str) -> int:
    """How deeply JSON `text` nests arrays and objects (brackets inside strings do not count)."""
    depth = deepest = 0
    in_string = False
    for token in _JSON_TOKEN.findall(text):
        if token == '"':
            in_string = not in_string
        elif in_string or token[0] == "\\":  # an escape outside a string is invalid JSON anyway
            continue
        elif token in "[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def load_json(text: str) -> Any:
    """json.loads with the nesting bounded first, so no file can make it recurse without end."""
    if json_depth(text) > MAX_JSON_DEPTH:
        raise ValueError(f"JSON nested more than {MAX_JSON_DEPTH} levels deep")
    return json.loads(text)


def _metadata(path: Path, metadata: dict[str, str]) -> tuple[str, CharTokenizer, dict[str, Any]]:
    if metadata.get(KEY_FORMAT) != ONNX_FORMAT:
        raise fail(path, "an ONNX model, but not a textgen model (no textgen metadata)")
    version = metadata.get(KEY_FORMAT_VERSION)
    if version not in SUPPORTED_VERSIONS:
        raise fail(path, f"textgen ONNX format version {version!r} is not supported "
                         f"(this runtime reads {', '.join(SUPPORTED_VERSIONS)})")
    kind = metadata.get(KEY_KIND)
    if kind not in SUPPORTED_KINDS:
        raise fail(path, f"holds a {kind!r} model; this runtime samples: {', '.join(SUPPORTED_KINDS)}")
    try:
        tokenizer = tokenizer_from_dict(load_json(metadata.get(KEY_TOKENIZER, "")))
        config = load_json(metadata.get(KEY_MODEL_CONFIG, ""))
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

    def session(self, options: ort.SessionOptions) -> CheckedSession:
        """An onnxruntime session built from the checked bytes, once every operator is one the
        exporter writes for this kind."""
        try:
            check_ops(self.scan.ops, self.kind)
        except ModelFileError as exc:
            raise fail(self.path, str(exc)) from None
        # Built from bytes, onnxruntime resolves a relative external-data path against this
        # folder (the working directory by default): an empty one it is never given again.
        with tempfile.TemporaryDirectory(prefix="textgen-no-external-data-") as empty:
            options.add_session_config_entry(
                "session.model_external_initializers_file_folder_path", empty)
            try:
                return CheckedSession(self.path, self.data, options)
            except Exception as exc:  # onnxruntime raises its own untyped errors for bad graphs
                raise fail(self.path, f"onnxruntime cannot load it ({_first_line(exc)})") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


class CheckedSession(ort.InferenceSession):
    """An onnxruntime session whose failures while running the graph (a shape it cannot
    allocate, a kernel error) are a one-line ModelFileError naming the file."""

    def __init__(self, path: Path, data: bytes, options: ort.SessionOptions) -> None:
        self.model_path = path
        super().__init__(data, options, providers=["CPUExecutionProvider"])

    def run(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().run(*args, **kwargs)
        except ORT_ERRORS as exc:
            raise fail(self.model_path, f"onnxruntime failed running it ({_first_line(exc)})"
                       ) from None

    def run_with_iobinding(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().run_with_iobinding(*args, **kwargs)
        except ORT_ERRORS as exc:
            raise fail(self.model_path, f"onnxruntime failed running it ({_first_line(exc)})"
                       ) from None


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
        return check_structure(read_model_bytes(Path(path))).metadata.get(KEY_KIND)
    except ModelFileError:
        return None


SPIN_VARIABLE = "TEXTGEN_SPIN"


def spinning(default: bool = True) -> bool:
    """Whether onnxruntime's worker threads spin between kernels: TEXTGEN_SPIN (0 or 1) when set,
    else `default` (a command's choice: the server's workers sleep, see runtime/serve.py)."""
    value = os.environ.get(SPIN_VARIABLE)
    return default if value is None else value.strip() != "0"


def basic_session_options(threads: int | None, spin: bool | None = None) -> ort.SessionOptions:
    """onnxruntime's defaults, quiet, with `threads` intra-op threads when given.

    Worker threads spin between kernels, as onnxruntime does by default: a token is ~50 short
    kernels, and waking a sleeping worker for each made batch-1 decoding 1.3x slower on an idle
    machine (docs/performance.md). Where other processes or threads hold the cores, spinning
    workers fight them (decoding measured ~2x slower); `spin` False (or TEXTGEN_SPIN=0 when
    `spin` is None) makes the workers sleep instead."""
    options = ort.SessionOptions()
    # Fatal only: a failed kernel is reported as a ModelFileError (CheckedSession); onnxruntime's
    # own log line would repeat it raw, node names from the file (escape sequences) included.
    options.log_severity_level = 4
    if threads:
        options.intra_op_num_threads = threads
    if not (spinning() if spin is None else spin):
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
