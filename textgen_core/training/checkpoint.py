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
to unpickle is refused, so a checkpoint from a stranger cannot run code. What it unpickles is
then checked as a whole before anyone reads it: plain values nest at most MAX_DEPTH deep and
integers fit in 64 bits, and the run state is well formed (training/resume_checks.py). The
model's sizes are bounded where a model is rebuilt from it (models/size_limits.py).
"""

from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path
from typing import Any

import torch

from runtime.atomic_file import describe_os_error, write_atomic
from textgen_core.errors import CheckpointError
from textgen_core.training.resume_checks import check_run_state

CHECKPOINT_FORMAT = "textgen-checkpoint"
CHECKPOINT_VERSION = 1
KINDS = ("gpt", "gan", "stack")
MAX_DEPTH = 32  # a textgen checkpoint nests 6 deep (optimizer -> state -> id -> moment)
_INT_BITS = 63


def save_checkpoint(payload: dict[str, Any], path: str | os.PathLike[str]) -> None:
    """Write `payload` to `path` so that `path` always holds a complete checkpoint.

    The checkpoint is serialised in memory first, then written with runtime.atomic_file (temporary
    file, fsync, `os.replace`, folder fsync): a crash at any point leaves either the previous
    checkpoint or the new one, never half of one, and a write that runs out of space fails with the
    operating system's error, reported as "disk full" (torch's own zip writer reports it as an
    internal assertion).
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CheckpointError(f"cannot create directory {path.parent}: {describe_os_error(exc)}") from None
    buffer = io.BytesIO()
    try:
        torch.save(payload, buffer)
        write_atomic(path, buffer.getbuffer())
    except OSError as exc:
        raise CheckpointError(f"could not write checkpoint {path}: {describe_os_error(exc)}; the previous "
                              "checkpoint is unchanged") from None


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
    _check_plain_values(payload, path)
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
    try:
        check_run_state(payload)
    except CheckpointError as exc:
        raise CheckpointError(f"{path}: {exc}") from None
    return payload


def _check_plain_values(payload: dict[str, Any], path: Path) -> None:
    """Every value is at most MAX_DEPTH deep and every integer fits in 64 bits, so that no later
    reader recurses without end or turns a 4,000-digit number into a traceback. Iterative: the
    walk itself cannot overflow the stack."""
    todo: list[tuple[str, Any, int]] = [(k if isinstance(k, str) else _key_text(k), v, 1)
                                        for k, v in payload.items()]
    while todo:
        where, value, depth = todo.pop()
        if isinstance(value, int) and not isinstance(value, bool):
            if abs(value) >= 1 << _INT_BITS:
                digits = int(value.bit_length() * 0.30103) + 1
                raise CheckpointError(f"{path}: {where[:80]} holds an integer of about {digits:,} "
                                      "digits; a checkpoint's integers fit in 64 bits")
            continue
        if not isinstance(value, (dict, list, tuple)):
            continue
        if depth >= MAX_DEPTH:
            raise CheckpointError(f"{path}: {where[:80]} nests deeper than {MAX_DEPTH} levels")
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in items:
            if isinstance(value, dict):
                todo.append((where, key, depth + 1))  # keys are values too (optimizer ids)
            todo.append((f"{where}.{key}" if isinstance(key, str) else f"{where}[{_key_text(key)}]",
                         item, depth + 1))


def _key_text(key: Any) -> str:
    if isinstance(key, int) and key.bit_length() > _INT_BITS:
        return "..."  # the key itself is reported as it is walked
    return repr(key)[:40]


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
