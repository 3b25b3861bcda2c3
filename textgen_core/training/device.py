"""Device choice, compilation and mixed precision: what differs between CPU, CUDA and MPS.

Each difference is a small pure function of the device type, so the MPS rules are tested on
machines without a Mac. Checkpoints hold CPU tensors (`load_checkpoint` maps to the CPU), so a
run saved on any device loads and resumes on any other."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch

from textgen_core.errors import ConfigError


def resolve_device(requested: str) -> torch.device:
    if requested == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if requested == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda was asked for, but PyTorch sees no CUDA device")
    if requested == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("--device mps was asked for, but this PyTorch has no MPS device")
    if requested not in ("cpu", "cuda", "mps"):
        raise ConfigError(f"--device must be auto, cpu, cuda or mps, got {requested!r}")
    return torch.device(requested)


def should_compile(mode: str, device: torch.device) -> bool:
    """`auto` compiles on CUDA/MPS only: on a 2-core CPU the compile time outweighs the gain."""
    if mode == "on":
        return True
    if mode == "off":
        return False
    return device.type in ("cuda", "mps")


def autocast_dtype(device: torch.device) -> torch.dtype | None:
    """The mixed-precision dtype training uses on `device` (None: fp32, no autocast)."""
    if device.type == "cuda":
        return amp_dtype_for("cuda", bf16_supported=torch.cuda.is_bf16_supported())
    if device.type == "mps":
        return amp_dtype_for("mps", bf16_supported=_mps_bf16_supported())
    return amp_dtype_for(device.type, bf16_supported=False)


def amp_dtype_for(device_type: str, *, bf16_supported: bool) -> torch.dtype | None:
    """CUDA: bf16 where the GPU has it, else fp16 (with a grad scaler, see `needs_grad_scaler`).
    MPS: bf16 where PyTorch's MPS autocast and the OS support it (macOS 14+), else fp32: fp16
    would need loss scaling, and the grad scaler is a CUDA tool. CPU: fp32 (bf16 autocast on a
    CPU is slower than fp32 for models this small)."""
    if device_type == "cuda":
        return torch.bfloat16 if bf16_supported else torch.float16
    if device_type == "mps" and bf16_supported:
        return torch.bfloat16
    return None


def cpu_has_native_bf16() -> bool:
    """AVX512-BF16 or AMX: the CPU multiplies bf16 matrices natively (here ~2.4x faster than
    fp32); without them oneDNN emulates bf16, slower than fp32."""
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")  # private, so looked up
    return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in probes)


def training_dtype(device: torch.device) -> torch.dtype | None:
    """What a GPT training step computes in: `autocast_dtype`, except that a CPU with native
    bf16 trains in bf16 too (its attention stays fp32, textgen_core/models/gpt.py). Evaluation
    keeps `autocast_dtype` (fp32 on CPU), so reported losses are fp32 measurements."""
    if device.type == "cpu":
        return torch.bfloat16 if cpu_has_native_bf16() else None
    return autocast_dtype(device)


def needs_grad_scaler(device_type: str, dtype: torch.dtype | None) -> bool:
    """Only fp16 needs loss scaling (bf16 has fp32's exponent range), and only on CUDA do we use it."""
    return device_type == "cuda" and dtype == torch.float16


BY_DEVICE: Any = object()  # "the device's rule", for the dtype arguments below


def grad_scaler(device: torch.device, dtype: Any = BY_DEVICE) -> torch.amp.GradScaler:
    """A pass-through scaler (enabled=False) everywhere but CUDA with fp16 (`dtype`: what the
    steps compute in; by default the device's autocast rule)."""
    enabled = needs_grad_scaler(device.type, autocast_dtype(device) if dtype is BY_DEVICE else dtype)
    return torch.amp.GradScaler("cuda" if enabled else "cpu", enabled=enabled)


def pins_memory(device_type: str) -> bool:
    """Page-locked host buffers speed up copies to a CUDA GPU only; MPS shares memory with the
    CPU and pinning there just costs time."""
    return device_type == "cuda"


def synchronize(device: torch.device) -> None:
    """Wait for queued GPU work so step timings are real (CUDA and MPS run asynchronously)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def _mps_bf16_supported() -> bool:
    if not torch.amp.is_autocast_available("mps"):
        return False
    return bool(torch.backends.mps.is_macos_or_newer(14, 0))


@contextlib.contextmanager
def autocast(device: torch.device, training: bool = False, dtype: Any = BY_DEVICE) -> Iterator[None]:
    """Mixed precision for a forward pass: `dtype` when given (None: fp32; a GPT run passes its
    measured choice, textgen_core/training/dtype_choice.py), else `training_dtype` for training
    steps (training=True) and `autocast_dtype` otherwise."""
    if dtype is BY_DEVICE:
        dtype = training_dtype(device) if training else autocast_dtype(device)
    if dtype is None:
        yield
        return
    with torch.autocast(device_type=device.type, dtype=dtype):
        yield
