"""The gate in front of a TorchScript file, checked before torch is imported, and the header a
textgen TorchScript file carries (written by export/torchscript_file.py).

`torch.jit.load` executes code stored in the file, so a TorchScript model from a stranger can do
anything the user can. The chat opens one only with `--trust-torchscript`; the generators that
load it live on the torch side (export/torchscript_generator.py), so the runtime itself never
imports torch and the refusal works without it.

The header (`textgen.json` among the file's `_extra_files`: format, version and kind) is plain
data in the file's zip archive; `torchscript_kind` reads it without torch and without running
anything, so that the chat can pick the front end of the model's kind (sentences for a GAN, a
continued prompt otherwise) before the file is trusted and loaded.
"""

from __future__ import annotations

import json
import zipfile
import zlib
from pathlib import Path
from typing import Any

from runtime.errors import ModelFileError

TORCH_MISSING = "TorchScript files need PyTorch installed; use the ONNX file"
TORCHSCRIPT_FORMAT = "textgen-torchscript"
HEADER_FILE = "textgen.json"
TOKENIZER_FILE = "tokenizer.json"
MODEL_CONFIG_FILE = "model_config.json"
_HEADER_BYTES = 4096  # a header is ~80 bytes; anything larger is not ours


def require_trusted(path: Path, trusted: bool) -> None:
    """Refuse an untrusted TorchScript file, or a missing one, without touching torch."""
    if not trusted:
        raise ModelFileError(
            f"{path} is a TorchScript file, which runs code when loaded; pass "
            "--trust-torchscript if you trust its origin, or export to ONNX instead"
        )
    if not path.is_file():
        raise ModelFileError(f"model file not found: {path}")


def torchscript_kind(path: str | Path) -> str | None:
    """The `kind` in a textgen TorchScript file's header, or None when it cannot be read (the
    torch-side loader then says why). torch.jit.save stores `_extra_files` as
    `<archive>/extra/<name>` members."""
    try:
        with zipfile.ZipFile(path) as archive:
            member = next((info for info in archive.infolist()
                           if info.filename.count("/") == 2
                           and info.filename.endswith(f"/extra/{HEADER_FILE}")), None)
            if member is None or member.file_size > _HEADER_BYTES:
                return None
            with archive.open(member) as stream:
                header = json.loads(stream.read(_HEADER_BYTES + 1))
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error, ValueError, RuntimeError,
            NotImplementedError):
        return None
    if not isinstance(header, dict) or header.get("format") != TORCHSCRIPT_FORMAT:
        return None
    kind = header.get("kind")
    return kind if isinstance(kind, str) else None


def open_trusted(path: Path, trusted: bool, kinds: tuple[str, ...]) -> Any:
    """The torch-side sampler for a TorchScript file of one of `kinds` (export/
    torchscript_generator.py), refused before torch is imported when the file is not trusted."""
    require_trusted(path, trusted)
    try:
        from export.torchscript_generator import open_torchscript
    except ModuleNotFoundError as exc:
        if exc.name is None or exc.name.split(".")[0] not in ("torch", "export"):
            raise
        raise ModelFileError(TORCH_MISSING) from None
    return open_torchscript(path, trusted=True, kinds=kinds)
