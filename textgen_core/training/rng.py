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
    return state


def restore_rng(state: dict[str, Any], batch_generator: torch.Generator) -> None:
    torch.set_rng_state(state["torch"].cpu())
    batch_generator.set_state(state["batch"].cpu())
    cuda_states = state.get("cuda")
    # A run moved between machines keeps its data order; GPU dropout masks cannot carry over.
    if cuda_states and torch.cuda.is_available() and len(cuda_states) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([s.cpu() for s in cuda_states])
