"""The textgen TorchScript file: a traced module with the textgen header, the tokenizer and the
model config riding along as `_extra_files` (what export/torchscript_generator.py reads back).

TorchScript files run code when loaded; they are for PyTorch deployments that trust the file.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import torch

from export.metadata import ONNX_FORMAT_VERSION

TORCHSCRIPT_FORMAT = "textgen-torchscript"


def extra_files(kind: str, tokenizer: dict[str, Any], model_config: dict[str, Any]) -> dict[str, str]:
    header = {"format": TORCHSCRIPT_FORMAT, "version": ONNX_FORMAT_VERSION, "kind": kind}
    return {
        "textgen.json": json.dumps(header),
        "tokenizer.json": json.dumps(tokenizer, ensure_ascii=False),
        "model_config.json": json.dumps(model_config),
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
