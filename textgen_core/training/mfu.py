"""Model FLOPs utilisation against the detected GPU's real dense bf16 peak.

FLOPs per token = 6 N + 12 L C T (PaLM, appendix B): 6 N for the forward and backward matmuls
over N non-embedding parameters, 12 L C T for attention scores and values over context T with
width C in L layers. MFU = achieved FLOP/s / peak FLOP/s.
"""

from __future__ import annotations

import torch

from textgen_core.models.gpt import GPTConfig

# Dense (no sparsity) bf16 tensor-core peaks from the vendors' data sheets, in FLOP/s.
_PEAK_BF16 = (
    ("H200", 989e12),
    ("H100 PCIe", 756e12),
    ("H100 NVL", 835e12),
    ("H100", 989e12),
    ("GH200", 989e12),
    ("B200", 2250e12),
    ("A100", 312e12),
    ("A10G", 70e12),
    ("A10", 125e12),
    ("L40S", 362e12),
    ("L4", 121e12),
    ("RTX 4090", 165e12),
    ("RTX 3090", 71e12),
    ("V100", 125e12),  # fp16; V100 has no bf16 tensor cores
    ("T4", 65e12),  # fp16
)


def flops_per_token(config: GPTConfig, num_params: int) -> float:
    return 6.0 * num_params + 12.0 * config.n_layer * config.n_embd * config.block_size


def device_peak_flops(device: torch.device) -> float | None:
    """Peak dense bf16 FLOP/s of `device`, or None when unknown (then no MFU is shown)."""
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    for marker, peak in _PEAK_BF16:
        if marker in name:
            return peak
    return None
