"""GPU training step, nanoGPT's baby shape and batch (6x384, ctx 256, batch 64), on CUDA only:
our step as the trainer runs it (compile, bf16 autocast, fused AdamW) against the
nanoGPT-equivalent reference with nanoGPT's own GPU settings (benchmarks/nanogpt_reference.py),
timed in alternating blocks, plus our MFU against the detected device's dense bf16 peak.
Target: ours >= 1.5x the reference. NOT YET MEASURED: written without a GPU.
"""

from __future__ import annotations

import torch

from benchmarks.report import Row
from benchmarks.training_speed import our_step, preset_configs, reference_loop, tokens_per_s
from textgen_core.training.mfu import device_peak_flops, flops_per_token


def run(preset: str = "baby", rounds: int = 5, block: int = 20, device: str = "cuda") -> list[Row]:
    """The baby shape and batch on CUDA, nanoGPT's own settings (compile, bf16, fused AdamW) for
    the reference; our step as the trainer runs it; MFU of ours against the device's peak.
    `device` lets a test exercise this code on CPU with a tiny preset."""
    device = torch.device(device)
    model_cfg, train_cfg = preset_configs(preset)
    ours, model = our_step(model_cfg, train_cfg, device)
    speeds = tokens_per_s({"reference": reference_loop(model_cfg, train_cfg, device), "ours": ours},
                          model_cfg, train_cfg.batch_size, device, rounds, block, warmup=5)
    ref_name = "nanoGPT-equivalent (compile, bf16)"
    rows = [
        Row("gpu-training", ref_name, speeds["reference"], "tok/s", note="target: ours >= 1.5x"),
        Row("gpu-training", f"textgen step (--preset {preset})", speeds["ours"], "tok/s",
            reference=ref_name),
    ]
    peak = device_peak_flops(device)
    if peak:
        flops = flops_per_token(model_cfg, model.num_parameters())
        rows.append(Row("gpu-training", "MFU, textgen step", 100 * flops * speeds["ours"] / peak, "%",
                        note=f"6N + 12·L·C·T = {flops / 1e6:.1f} MFLOP/token; peak "
                             f"{peak / 1e12:.0f} TFLOP/s bf16 ({torch.cuda.get_device_name(device)})"))
    return rows
