"""CPU, CUDA and MPS rules as pure functions of the device type (no Mac or GPU needed), and
checkpoints that move between devices."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from textgen_core.models.gpt import gpt_from_checkpoint
from textgen_core.training import device as device_rules
from textgen_core.training.checkpoint import load_checkpoint
from textgen_core.training.device import (
    amp_dtype_for,
    autocast_dtype,
    grad_scaler,
    needs_grad_scaler,
    pins_memory,
    should_compile,
    training_dtype,
)
from textgen_core.training.rng import capture_rng, restore_rng


@pytest.mark.parametrize(
    ("device_type", "bf16", "expected"),
    [
        ("cuda", True, torch.bfloat16),
        ("cuda", False, torch.float16),
        ("mps", True, torch.bfloat16),  # MPS autocast on macOS 14+
        ("mps", False, None),  # fp16 would need loss scaling: train in fp32 instead
        ("cpu", True, None),
    ],
)
def test_mixed_precision_by_device(device_type: str, bf16: bool, expected: torch.dtype | None) -> None:
    assert amp_dtype_for(device_type, bf16_supported=bf16) == expected


@pytest.mark.parametrize("native", [True, False])
def test_cpu_trains_in_bf16_only_where_it_multiplies_bf16_natively(
        monkeypatch: pytest.MonkeyPatch, native: bool) -> None:
    monkeypatch.setattr(device_rules, "cpu_has_native_bf16", lambda: native)
    assert training_dtype(torch.device("cpu")) == (torch.bfloat16 if native else None)
    assert autocast_dtype(torch.device("cpu")) is None  # evaluation stays fp32
    assert not grad_scaler(torch.device("cpu")).is_enabled()


def test_grad_scaler_only_for_cuda_fp16() -> None:
    assert needs_grad_scaler("cuda", torch.float16)
    assert not needs_grad_scaler("cuda", torch.bfloat16)
    assert not needs_grad_scaler("mps", torch.float16)
    assert not needs_grad_scaler("mps", torch.bfloat16)
    assert not needs_grad_scaler("cpu", None)
    assert autocast_dtype(torch.device("cpu")) is None
    assert not grad_scaler(torch.device("cpu")).is_enabled()


def test_pinned_memory_only_on_cuda() -> None:
    assert pins_memory("cuda") and not pins_memory("mps") and not pins_memory("cpu")


def test_compile_auto_by_device() -> None:
    assert should_compile("auto", torch.device("mps")) and not should_compile("auto", torch.device("cpu"))


def test_checkpoint_tensors_load_on_the_cpu(tiny_gpt_checkpoint: Path) -> None:
    payload = load_checkpoint(tiny_gpt_checkpoint)
    assert all(t.device.type == "cpu" for t in payload["model"].values())
    model, _ = gpt_from_checkpoint(payload)
    assert next(model.parameters()).device.type == "cpu"


def test_rng_state_from_another_device_is_accepted() -> None:
    """A run saved on a Mac or a GPU box carries 'mps'/'cuda' RNG states; resuming elsewhere keeps
    the data order and skips the device streams that do not exist here."""
    generator = torch.Generator().manual_seed(3)
    state = capture_rng(generator)
    expected = torch.randint(100, (5,), generator=generator)
    state["mps"] = torch.zeros(8, dtype=torch.uint8)
    state["cuda"] = [torch.zeros(8, dtype=torch.uint8)] * 3
    fresh = torch.Generator().manual_seed(99)
    restore_rng(state, fresh)
    assert torch.equal(torch.randint(100, (5,), generator=fresh), expected)
