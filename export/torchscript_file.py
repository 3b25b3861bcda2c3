"""The textgen TorchScript file: a traced module with the textgen header, the tokenizer and the
model config riding along as `_extra_files` (names and format in runtime/torchscript_trust.py,
which reads the header without torch; export/torchscript_generator.py reads the whole file back).

TorchScript files run code when loaded; they are for PyTorch deployments that trust the file.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from runtime.contract import KINDS, ONNX_FORMAT_VERSION
from runtime.errors import ModelFileError, TextgenError
from runtime.tokenizer import CharTokenizer, tokenizer_from_dict
from runtime.torchscript_trust import (
    HEADER_FILE,
    MODEL_CONFIG_FILE,
    TOKENIZER_FILE,
    TORCHSCRIPT_FORMAT,
    require_trusted,
    torchscript_kind,
)
from runtime.word_tokenizer import WordTokenizer


def extra_files(kind: str, tokenizer: dict[str, Any], model_config: dict[str, Any]) -> dict[str, str]:
    header = {"format": TORCHSCRIPT_FORMAT, "version": ONNX_FORMAT_VERSION, "kind": kind}
    return {
        HEADER_FILE: json.dumps(header),
        TOKENIZER_FILE: json.dumps(tokenizer, ensure_ascii=False),
        MODEL_CONFIG_FILE: json.dumps(model_config),
    }


def save_traced(module: torch.nn.Module, example: Any, path: Path, extra: dict[str, str]) -> Path:
    """Trace `module` on `example` and save it with `extra` as its `_extra_files`."""
    with warnings.catch_warnings():
        # torch.jit is deprecated in favour of torch.export in this torch release, and tracing
        # warns about Python ints derived from shapes; both are expected for our wrappers.
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(module, example, check_trace=False)
        torch.jit.save(traced, str(path), _extra_files=extra)
    return path


def load_traced(path: str | Path) -> torch.jit.ScriptModule:
    """A file written by `save_traced`, for the parity checks (torch.jit warns it is deprecated)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.jit.load(str(path))


@dataclass(frozen=True)
class TorchScriptFile:
    """A loaded textgen TorchScript file: the module and what rides along with it."""

    path: Path
    module: torch.jit.ScriptModule
    kind: str
    tokenizer: CharTokenizer | WordTokenizer
    config: dict[str, Any]


def read_torchscript(path: str | Path, trusted: bool, kinds: tuple[str, ...] = KINDS) -> TorchScriptFile:
    """Load a textgen TorchScript file of one of `kinds`, only when the user trusts it (loading
    runs code from the file; runtime/torchscript_trust.py)."""
    path = Path(path)
    require_trusted(path, trusted)
    # Trust is for textgen files: the header is read from the zip archive without torch, and a
    # file without it (or of another kind) is refused before torch.jit.load runs any of its code.
    declared = torchscript_kind(path)
    if declared is None:
        raise ModelFileError(f"{path}: not a textgen TorchScript file (no {TORCHSCRIPT_FORMAT!r} header); "
                             "it was not loaded, so none of its code ran")
    if declared not in KINDS:
        raise ModelFileError(f"{path} holds a {declared!r:.40} model; this version runs TorchScript files "
                             f"of: {', '.join(KINDS)}")
    if declared not in kinds:
        raise ModelFileError(f"{path} holds a {declared!r} model, not a {' or '.join(map(repr, kinds))} "
                             "model")
    files = dict.fromkeys((HEADER_FILE, TOKENIZER_FILE, MODEL_CONFIG_FILE), "")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch.jit is deprecated in recent torch
            module = torch.jit.load(str(path), map_location="cpu", _extra_files=files)
        header = json.loads(files[HEADER_FILE] or "{}")
        config = json.loads(files[MODEL_CONFIG_FILE] or "{}")
    except Exception as exc:  # torch.jit raises many types for foreign or damaged files
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise ModelFileError(f"{path}: not a textgen TorchScript file ({first})") from None
    if not isinstance(header, dict) or header.get("format") != TORCHSCRIPT_FORMAT:
        raise ModelFileError(f"{path}: not a textgen TorchScript file (no {TORCHSCRIPT_FORMAT!r} "
                             "header)")
    kind = header.get("kind")
    if kind not in KINDS:
        raise ModelFileError(f"{path} holds a {kind!r} model; this version runs TorchScript files "
                             f"of: {', '.join(KINDS)}")
    if kind not in kinds:
        raise ModelFileError(f"{path} holds a {kind!r} model, not a {' or '.join(map(repr, kinds))} "
                             "model")
    if not isinstance(config, dict):
        raise ModelFileError(f"{path}: its model config is not a JSON object")
    try:
        tokenizer = tokenizer_from_dict(json.loads(files[TOKENIZER_FILE] or "{}"))
    except (ValueError, TypeError, KeyError, TextgenError) as exc:
        raise ModelFileError(f"{path}: its tokenizer is unreadable ({exc})") from None
    return TorchScriptFile(path, module, kind, tokenizer, config)
