"""How training tokens/s of our step changes with model width at the `cpu` preset's depth,
context and batch (the preset's own width is the reference row)."""

from __future__ import annotations

import torch

from benchmarks.report import Row
from benchmarks.training_speed import our_step, preset_configs, tokens_per_s

WIDTHS = (64, 128, 256, 384)


def run(preset: str = "cpu", widths: tuple[int, ...] = WIDTHS, steps: int = 3) -> list[Row]:
    device = torch.device("cpu")
    base_cfg, train_cfg = preset_configs(preset)
    reference = f"width {base_cfg.n_embd} ({preset} preset)"
    rows = []
    for width in widths:
        model_cfg, _ = preset_configs(preset, n_embd=width)
        step, model = our_step(model_cfg, train_cfg, device)
        speed = tokens_per_s({"ours": step}, model_cfg, train_cfg.batch_size, device,
                             rounds=1, block=steps, warmup=1)["ours"]
        name = reference if width == base_cfg.n_embd else f"width {width}"
        rows.append(Row("training-scaling", name, speed, "tok/s", reference=reference,
                        note=f"{model.num_parameters() / 1e6:.2f} M params, "
                             f"{model_cfg.n_layer} layers"))
    return rows
