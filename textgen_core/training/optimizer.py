"""AdamW with weight decay on matrices only (fused where the device has a fused kernel), or
Muon for the hidden matrices with AdamW for the rest (`--optimizer muon`). Either one checks a
saved state against its parameters before loading it (training/resume_checks.py)."""

from __future__ import annotations

import inspect

import torch
from torch import nn

from textgen_core.training.config import TrainConfig
from textgen_core.training.muon import MuonAdamW, muon_groups
from textgen_core.training.resume_checks import guard_optimizer


def make_optimizer(model: nn.Module, cfg: TrainConfig, device: torch.device) -> torch.optim.Optimizer:
    if cfg.optimizer == "muon":
        groups = muon_groups(model, cfg.weight_decay, lr_scale=cfg.muon_lr / cfg.learning_rate)
        return guard_optimizer(MuonAdamW(groups, lr=cfg.learning_rate, betas=(cfg.beta1, cfg.beta2)))
    params = [p for p in model.parameters() if p.requires_grad]
    # Biases and LayerNorm gains are 1-d: decaying them only hurts (nanoGPT, GPT-2).
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    groups = [
        {"params": decay, "weight_decay": cfg.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    extra = {}
    # One fused kernel for all parameters instead of a Python loop over them; CPU has had one
    # since torch 2.4.
    if device.type in ("cuda", "cpu") and "fused" in inspect.signature(torch.optim.AdamW).parameters:
        extra["fused"] = True
    return guard_optimizer(torch.optim.AdamW(
        groups, lr=cfg.learning_rate, betas=(cfg.beta1, cfg.beta2), **extra
    ))
