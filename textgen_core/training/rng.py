"""Capture and restore every random stream a run uses, as uint8 tensors (weights-only safe).

A saved state comes from a file, so `check_rng_state` tries each CPU state on a scratch
generator first (torch refuses a wrong size or an invalid Mersenne Twister state there), and
restoring turns whatever torch still refuses into a CheckpointError.
"""

from __future__ import annotations

from typing import Any

import torch

from textgen_core.errors import CheckpointError
from textgen_core.models.checkpoint_checks import check_dense_tensor


def capture_rng(batch_generator: torch.Generator) -> dict[str, Any]:
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "batch": batch_generator.get_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    if torch.backends.mps.is_available():
        state["mps"] = torch.mps.get_rng_state()
    return state


def _byte_state(value: Any, where: str) -> torch.Tensor:
    tensor = check_dense_tensor(value, where, floating=False)
    if tensor.dtype != torch.uint8 or tensor.dim() != 1:
        raise CheckpointError(f"checkpoint {where} is not a random-generator state "
                              f"(a 1-d uint8 tensor; got {tensor.dtype} of shape {tuple(tensor.shape)})")
    return tensor


def _cpu_state(value: Any, where: str) -> None:
    tensor = _byte_state(value, where)
    try:
        torch.Generator().set_state(tensor)
    except (RuntimeError, TypeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"checkpoint {where} is not a valid CPU generator state: "
                              f"{first[:120]}") from None


def check_rng_state(state: Any, where: str = "train_state.rng") -> None:
    """`state` is what `capture_rng` wrote: valid CPU generator states under `torch` and `batch`
    (and each of `batch_by_rank`), uint8 tensors for the CUDA and MPS streams."""
    if not isinstance(state, dict):
        raise CheckpointError(f"checkpoint {where} is not a table of generator states "
                              f"(got {type(state).__name__})")
    for key in ("torch", "batch"):
        if key not in state:
            raise CheckpointError(f"checkpoint {where} has no {key!r} state")
        _cpu_state(state[key], f"{where}.{key}")
    by_rank = state.get("batch_by_rank")
    if by_rank is not None:
        if not isinstance(by_rank, (list, tuple)):
            raise CheckpointError(f"checkpoint {where}.batch_by_rank is not a list")
        for rank, value in enumerate(by_rank):
            _cpu_state(value, f"{where}.batch_by_rank[{rank}]")
    cuda = state.get("cuda")
    if cuda is not None:
        if not isinstance(cuda, (list, tuple)):
            raise CheckpointError(f"checkpoint {where}.cuda is not a list")
        for i, value in enumerate(cuda):
            _byte_state(value, f"{where}.cuda[{i}]")
    if state.get("mps") is not None:
        _byte_state(state["mps"], f"{where}.mps")


def restore_rng(
    state: dict[str, Any], batch_generator: torch.Generator, rank: int = 0, world_size: int = 1
) -> None:
    check_rng_state(state)
    torch.set_rng_state(state["torch"].cpu())
    by_rank = state.get("batch_by_rank") or [state["batch"]]
    if len(by_rank) == world_size:
        batch_generator.set_state(by_rank[rank].cpu())
    elif world_size == 1:
        batch_generator.set_state(state["batch"].cpu())
    # Otherwise the world size changed: each rank keeps the fresh seed it was given (seed + rank),
    # since the saved data positions belong to shards that no longer exist.
    cuda_states = state.get("cuda")
    try:
        # A run moved between machines keeps its data order; GPU dropout masks cannot carry over.
        if cuda_states and torch.cuda.is_available() and len(cuda_states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all([s.cpu() for s in cuda_states])
        if state.get("mps") is not None and torch.backends.mps.is_available():
            torch.mps.set_rng_state(state["mps"].cpu())
    except (RuntimeError, TypeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"checkpoint train_state.rng holds a GPU generator state this "
                              f"machine refuses: {first[:120]}") from None
