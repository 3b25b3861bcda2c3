"""Open an exported textgen ONNX model and hold it to the contract before any sampling.

Checks, in order, each failure a one-line ModelFileError naming the file: it exists and is a file;
its protobuf structure parses, with no external data and no custom operator domains (done on the
bytes, before onnxruntime sees them); it carries textgen metadata of a supported version and kind;
its checksum matches; onnxruntime accepts it; its inputs and outputs have the contract's names,
element types, ranks and (where static) sizes. The session is created from the checked bytes, so
what runs is exactly what was checked.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from runtime.errors import ModelFileError, TokenizerError
from runtime.onnx_scan import check_structure, verify_checksum
from runtime.tokenizer import CharTokenizer, tokenizer_from_dict
from runtime.yoke_spec import parse_yoke

ONNX_FORMAT = "textgen-onnx"
SUPPORTED_VERSIONS = ("1",)
SUPPORTED_KINDS = ("gpt", "gan", "stack")
_FLOAT, _INT64 = "tensor(float)", "tensor(int64)"


@dataclass(frozen=True)
class GPTShape:
    n_layer: int
    n_head: int
    head_size: int
    block_size: int
    vocab_size: int
    state_size: int = 0  # width of the stateful yoke's state (input yoke_state), 0 without one


def _fail(path: Path, reason: str) -> ModelFileError:
    return ModelFileError(f"{path}: {reason}")


def _read(path: Path) -> bytes:
    if not path.exists():
        raise ModelFileError(f"model file not found: {path}")
    if path.is_dir():
        raise ModelFileError(f"{path} is a directory, not an ONNX model file")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelFileError(f"cannot read {path}: {exc.strerror or exc}") from None
    if not data:
        raise _fail(path, "the file is empty")
    return data


def _metadata(path: Path, metadata: dict[str, str]) -> tuple[str, CharTokenizer, dict[str, Any]]:
    if metadata.get("textgen.format") != ONNX_FORMAT:
        raise _fail(path, "an ONNX model, but not a textgen model (no textgen metadata)")
    version = metadata.get("textgen.format_version")
    if version not in SUPPORTED_VERSIONS:
        raise _fail(path, f"textgen ONNX format version {version!r} is not supported "
                          f"(this runtime reads {', '.join(SUPPORTED_VERSIONS)})")
    kind = metadata.get("textgen.kind")
    if kind not in SUPPORTED_KINDS:
        raise _fail(path, f"holds a {kind!r} model; this runtime samples: {', '.join(SUPPORTED_KINDS)}")
    try:
        tokenizer = tokenizer_from_dict(json.loads(metadata.get("textgen.tokenizer", "")))
        config = json.loads(metadata.get("textgen.model_config", ""))
    except (ValueError, TokenizerError) as exc:
        raise _fail(path, f"its textgen metadata is malformed ({exc})") from None
    if not isinstance(config, dict):
        raise _fail(path, "its model config metadata is not a JSON object")
    return kind, tokenizer, config


def _shape(path: Path, config: dict[str, Any], tokenizer: CharTokenizer) -> GPTShape:
    try:
        n_layer, n_head, n_embd = int(config["n_layer"]), int(config["n_head"]), int(config["n_embd"])
        shape = GPTShape(n_layer, n_head, n_embd // n_head, int(config["block_size"]),
                         int(config["vocab_size"]))
    except (KeyError, TypeError, ValueError, ZeroDivisionError) as exc:
        raise _fail(path, f"its model config lacks a valid {exc}") from None
    if min(shape.n_layer, shape.n_head, shape.head_size, shape.block_size) < 1:
        raise _fail(path, "its model config has non-positive sizes")
    if shape.vocab_size != tokenizer.vocab_size:
        raise _fail(path, f"the tokenizer has {tokenizer.vocab_size} tokens but the model "
                          f"{shape.vocab_size}")
    try:
        yoke = parse_yoke(config.get("yoke", ""), shape.n_layer)
    except ValueError as exc:
        raise _fail(path, f"its model config has an invalid yoke ({exc})") from None
    if yoke is not None and yoke.stateful:
        shape = GPTShape(shape.n_layer, shape.n_head, shape.head_size, shape.block_size,
                         shape.vocab_size, state_size=yoke.hidden)
    return shape


def _check_io(path: Path, session: ort.InferenceSession, shape: GPTShape) -> None:
    expected_inputs = {"input_ids": (_INT64, 2)}
    expected_outputs = {"logits": (_FLOAT, 3)}
    for i in range(shape.n_layer):
        for part in ("key", "value"):
            expected_inputs[f"past_key_values.{i}.{part}"] = (_FLOAT, 4)
            expected_outputs[f"present.{i}.{part}"] = (_FLOAT, 4)
    if shape.state_size:  # the stateful yoke's state in, every position's activation out
        expected_inputs["yoke_state"] = (_FLOAT, 2)
        expected_outputs["yoke_state_out"] = (_FLOAT, 3)
    for kind, actual, expected in (("input", session.get_inputs(), expected_inputs),
                                   ("output", session.get_outputs(), expected_outputs)):
        names = [a.name for a in actual]
        if sorted(names) != sorted(expected):
            missing = sorted(set(expected) - set(names))
            extra = sorted(set(names) - set(expected))
            raise _fail(path, f"its {kind}s do not follow the textgen contract "
                              f"(missing {missing[:4]}, unexpected {extra[:4]})")
        for arg in actual:
            dtype, rank = expected[arg.name]
            if arg.type != dtype or len(arg.shape) != rank:
                raise _fail(path, f"{kind} {arg.name} is {arg.type} of rank {len(arg.shape)}, "
                                  f"expected {dtype} of rank {rank}")
            static = {2: shape.vocab_size} if arg.name == "logits" else {}
            if rank == 4:
                static = {1: shape.n_head, 3: shape.head_size}
            elif arg.name == "yoke_state":
                static = {1: shape.state_size}
            elif arg.name == "yoke_state_out":
                static = {2: shape.state_size}
            for axis, size in static.items():
                if isinstance(arg.shape[axis], int) and arg.shape[axis] != size:
                    raise _fail(path, f"{kind} {arg.name} has size {arg.shape[axis]} on axis "
                                      f"{axis}, the config says {size}")


def session_options(threads: int | None) -> ort.SessionOptions:
    """Options for batch-1 decoding, where each token is ~100 short kernels.

    Every graph optimisation is on (layer-norm, GELU and matmul fusions on top of the export's).
    Worker threads sleep between kernels instead of spinning: on a machine whose cores are busy
    with anything else, spinning workers fight the busy processes and decoding ran ~2x slower
    (README "Performance"); sleeping costs a few microseconds per kernel when the cores are idle.
    `threads` None keeps onnxruntime's default, one per physical core."""
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if threads:
        options.intra_op_num_threads = threads
    return options


class OnnxGPT:
    """A checked GPT ONNX model: one forward call with a key/value cache."""

    def __init__(self, path: str | Path, threads: int | None = None) -> None:
        self.path = Path(path)
        data = _read(self.path)
        try:
            scan = check_structure(data)
        except ModelFileError as exc:
            raise _fail(self.path, f"not a usable ONNX model file: {exc}") from None
        self.kind, self.tokenizer, self.config = _metadata(self.path, scan.metadata)
        if self.kind != "gpt":  # a GAN file: runtime.load() opens it with runtime/gan_model.py
            raise _fail(self.path, f"holds a {self.kind!r} model, not a GPT; open it with "
                                   "runtime.load(), which picks the sampler for its kind")
        try:
            verify_checksum(data, scan)
        except ModelFileError as exc:
            raise _fail(self.path, str(exc)) from None
        self.shape = _shape(self.path, self.config, self.tokenizer)
        options = session_options(threads)
        try:
            self.session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own untyped errors for bad graphs
            first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
            raise _fail(self.path, f"onnxruntime cannot load it ({first})") from None
        _check_io(self.path, self.session, self.shape)
        self._past_names = [f"past_key_values.{i}.{p}" for i in range(self.shape.n_layer)
                            for p in ("key", "value")]
        self._output_names = ["logits"] + [f"present.{i}.{p}" for i in range(self.shape.n_layer)
                                           for p in ("key", "value")]

    def empty_past(self, batch_size: int = 1) -> list[np.ndarray]:
        s = self.shape
        return [np.zeros((batch_size, s.n_head, 0, s.head_size), np.float32)
                for _ in self._past_names]

    def forward(self, ids: np.ndarray, past: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
        """Logits (b, s, V) for `ids` (b, s) after the cached `past`, and the extended cache.
        A stateful yoke model reads the window with a zero state (no earlier window)."""
        feed = {"input_ids": np.ascontiguousarray(ids, dtype=np.int64)}
        feed.update(zip(self._past_names, past, strict=True))
        if self.shape.state_size:
            feed["yoke_state"] = self.empty_state(len(ids))
        outputs = self.session.run(self._output_names, feed)
        return outputs[0], outputs[1:]

    def empty_state(self, batch_size: int = 1) -> np.ndarray:
        return np.zeros((batch_size, self.shape.state_size), np.float32)

    def forward_stateful(
        self, ids: np.ndarray, past: list[np.ndarray], state: np.ndarray
    ) -> tuple[np.ndarray, list[np.ndarray], np.ndarray]:
        """`forward` of a stateful yoke model with the window's state (b, H), also returning the
        yoke's activation of every position (b, s, H) (see runtime/yoke_state.py)."""
        feed = {"input_ids": np.ascontiguousarray(ids, dtype=np.int64),
                "yoke_state": np.ascontiguousarray(state, dtype=np.float32)}
        feed.update(zip(self._past_names, past, strict=True))
        outputs = self.session.run([*self._output_names, "yoke_state_out"], feed)
        return outputs[0], outputs[1:-1], outputs[-1]
