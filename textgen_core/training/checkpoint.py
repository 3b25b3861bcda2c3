"""Checkpoint files: one dict of tensors and plain values, written atomically, loaded safely.

Layout (DESIGN.md):
    format        "textgen-checkpoint"
    version       CHECKPOINT_VERSION
    kind          "gpt" | "gan" | "stack"
    model_config  dict of plain values
    tokenizer     dict of plain values (runtime.tokenizer)
    model         state_dict of the uncompiled module
    optimizer     optimizer state_dict (tensors and plain values)
    train_state   step, val_loss, best_val_loss, tokens_seen, RNG states as uint8 tensors
    train_config  dict of plain values

Loading uses `torch.load(weights_only=True)` and nothing else: a file that needs any other class
to unpickle is refused, so a checkpoint from a stranger cannot run code.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from textgen_core.errors import CheckpointError

CHECKPOINT_FORMAT = "textgen-checkpoint"
CHECKPOINT_VERSION = 1
KINDS = ("gpt", "gan", "stack")


def save_checkpoint(payload: dict[str, Any], path: str | os.PathLike[str]) -> None:
    """Write `payload` to `path` so that `path` always holds a complete checkpoint.

    The bytes go to a temporary file in the same directory, are fsynced, and replace `path` in one
    `os.replace`; the directory is fsynced so the rename survives a power cut. A crash at any point
    leaves either the previous checkpoint or the new one, never half of one.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CheckpointError(f"cannot create directory {path.parent}: {exc.strerror}") from None
    tmp_name = None
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_name, path)
        tmp_name = None
        _fsync_directory(path.parent)
    except OSError as exc:
        reason = "disk full" if exc.errno == errno.ENOSPC else (exc.strerror or str(exc))
        raise CheckpointError(
            f"could not write checkpoint {path}: {reason}; the previous checkpoint is unchanged"
        ) from None
    except RuntimeError as exc:  # torch.save wraps write failures of its zip writer
        raise CheckpointError(
            f"could not write checkpoint {path}: {exc}; the previous checkpoint is unchanged"
        ) from None
    finally:
        if tmp_name is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp_name)


def _fsync_directory(directory: Path) -> None:
    if os.name != "posix":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def load_checkpoint(
    path: str | os.PathLike[str], kind: str | None = None, map_location: str = "cpu"
) -> dict[str, Any]:
    """Load and validate a checkpoint; `kind` (if given) must match the file's kind."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint not found: {path}")
    if path.is_dir():
        raise CheckpointError(f"{path} is a directory, not a checkpoint file")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises many types for corrupt/unsafe files; all mean "refused"
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "weights only load failed" in reason.lower() or "unsupported global" in str(exc).lower():
            reason = "it contains Python objects that are not allowed (unsafe pickle)"
        raise CheckpointError(
            f"{path} is not a loadable textgen checkpoint (corrupt, truncated or unsafe): {reason[:200]}"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is not a textgen checkpoint (no '{CHECKPOINT_FORMAT}' header)")
    version = payload.get("version")
    if not isinstance(version, int) or version > CHECKPOINT_VERSION:
        raise CheckpointError(
            f"{path} has checkpoint version {version!r}; this textgen reads up to {CHECKPOINT_VERSION}"
        )
    missing = [k for k in ("kind", "model_config", "tokenizer", "model") if k not in payload]
    if missing:
        raise CheckpointError(f"{path} is incomplete: missing {', '.join(missing)}")
    if kind is not None and payload["kind"] != kind:
        raise CheckpointError(
            f"{path} holds a {payload['kind']!r} model, but this command needs a {kind!r} model"
        )
    return payload


def make_checkpoint(
    *,
    kind: str,
    model_config: dict[str, Any],
    tokenizer: dict[str, Any],
    model_state: dict[str, torch.Tensor],
    optimizer_state: dict[str, Any] | None = None,
    train_state: dict[str, Any] | None = None,
    train_config: dict[str, Any] | None = None,
) -> dict[str, Any]:
    assert kind in KINDS, kind
    return {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "kind": kind,
        "model_config": model_config,
        "tokenizer": tokenizer,
        "model": model_state,
        "optimizer": optimizer_state,
        "train_state": train_state or {},
        "train_config": train_config or {},
    }


def remove_stale_temporaries(path: str | os.PathLike[str]) -> None:
    """Delete temporary files a killed save left beside `path` (never the checkpoint itself)."""
    path = Path(path)
    if not path.parent.is_dir():
        return
    for leftover in path.parent.glob(f".{path.name}.*.tmp"):
        with contextlib.suppress(OSError):
            leftover.unlink()
