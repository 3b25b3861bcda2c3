"""The gate in front of a TorchScript file, checked before torch is imported.

`torch.jit.load` executes code stored in the file, so a TorchScript model from a stranger can do
anything the user can. The chat opens one only with `--trust-torchscript`; the generator that loads
it lives on the torch side (export/torchscript_generator.py), so the runtime itself never imports
torch and the refusal works without it.
"""

from __future__ import annotations

from pathlib import Path

from runtime.errors import ModelFileError

TORCH_MISSING = "TorchScript files need PyTorch installed; use the ONNX file"


def require_trusted(path: Path, trusted: bool) -> None:
    """Refuse an untrusted TorchScript file, or a missing one, without touching torch."""
    if not trusted:
        raise ModelFileError(
            f"{path} is a TorchScript file, which runs code when loaded; pass "
            "--trust-torchscript if you trust its origin, or export to ONNX instead"
        )
    if not path.is_file():
        raise ModelFileError(f"model file not found: {path}")
