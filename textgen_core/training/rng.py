"""Capture and restore every random stream a run uses, as uint8 tensors (weights-only safe)."""

from __future__ import annotations

from typing import Any

import torch


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


def restore_rng(
    state: dict[str, Any], batch_generator: torch.Generator, rank: int = 0, world_size: int = 1
) -> None:
    torch.set_rng_state(state["torch"].cpu())
    by_rank = state.get("batch_by_rank") or [state["batch"]]
    if len(by_rank) == world_size:
        batch_generator.set_state(by_rank[rank].cpu())
    elif world_size == 1:
        batch_generator.set_state(state["batch"].cpu())
    # Otherwise the world size changed: each rank keeps the fresh seed it was given (seed + rank),
    # since the saved data positions belong to shards that no longer exist.
    cuda_states = state.get("cuda")
    # A run moved between machines keeps its data order; GPU dropout masks cannot carry over.
    if cuda_states and torch.cuda.is_available() and len(cuda_states) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([s.cpu() for s in cuda_states])
    if state.get("mps") is not None and torch.backends.mps.is_available():
        torch.mps.set_rng_state(state["mps"].cpu())
