"""MFU uses the detected GPU's own dense bf16 peak, not one constant."""

from __future__ import annotations

import pytest
import torch

from textgen_core.models.gpt import GPTConfig
from textgen_core.training.mfu import device_peak_flops, flops_per_token


@pytest.mark.parametrize(("name", "peak"), [
    ("NVIDIA H100 80GB HBM3", 989e12), ("NVIDIA H100 PCIe", 756e12), ("NVIDIA H100 NVL", 835e12),
    ("NVIDIA H200", 989e12), ("NVIDIA A100-SXM4-80GB", 312e12), ("NVIDIA L4", 121e12),
    ("NVIDIA L40S", 362e12), ("NVIDIA A10G", 70e12), ("Some Future GPU", None),
])
def test_peak_of_the_detected_device(monkeypatch: pytest.MonkeyPatch, name: str, peak: float | None) -> None:
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: name)
    assert device_peak_flops(torch.device("cuda")) == peak


def test_no_peak_on_cpu_and_the_formula() -> None:
    assert device_peak_flops(torch.device("cpu")) is None
    config = GPTConfig(n_layer=6, n_embd=384, block_size=256)
    assert flops_per_token(config, 10_000_000) == 6 * 10_000_000 + 12 * 6 * 384 * 256
