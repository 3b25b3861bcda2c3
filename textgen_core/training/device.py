"""Device choice, compilation and mixed precision: what differs between CPU, CUDA and MPS."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

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
    """bf16 autocast on CUDA where supported; MPS and CPU train in fp32."""
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    if device.type == "cuda":
        return torch.float16
    return None


@contextlib.contextmanager
def autocast(device: torch.device) -> Iterator[None]:
    dtype = autocast_dtype(device)
    if dtype is None:
        yield
        return
    with torch.autocast(device_type=device.type, dtype=dtype):
        yield
