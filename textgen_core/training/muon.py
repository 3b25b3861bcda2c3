"""Muon for the hidden weight matrices, AdamW for everything else, as one optimizer.

Muon (Jordan et al. 2024, "Muon: MomentUm Orthogonalized by Newton-schulz") takes SGD's Nesterov
momentum for a 2-d weight and replaces it by the nearest semi-orthogonal matrix (all singular
values ~1), computed with a few Newton-Schulz iterations. Every direction of the update then moves
at the same rate, which lets small transformers reach a given loss in fewer steps than AdamW.
Embeddings (the tied output head included) and 1-d gains stay on AdamW, as in the original.

One optimizer object keeps checkpoints simple: its state is tensors and plain values. The trainer
sets every group's `lr` from the schedule; Muon groups use `lr * lr_scale`, so the schedule's
shape applies to both while their peak rates differ.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

# Quintic Newton-Schulz coefficients tuned to push singular values into ~[0.7, 1.2] in 5 steps
# (Keller Jordan's Muon); exact orthogonality is not needed, only equalised step sizes.
_NS_COEFFS = (3.4445, -4.7750, 2.0315)


def orthogonalize(update: Tensor, steps: int = 5) -> Tensor:
    """Approximately U V^T of `update`'s SVD (2-d), in bf16 on CUDA and fp32 elsewhere."""
    a, b, c = _NS_COEFFS
    x = update.to(torch.bfloat16 if update.is_cuda else torch.float32)
    transposed = x.size(0) > x.size(1)
    if transposed:  # iterate on the wide orientation: the Gram matrix is the smaller one
        x = x.T
    x = x / (x.norm() + 1e-7)  # spectral norm <= Frobenius norm <= 1
    for _ in range(steps):
        gram = x @ x.T
        x = a * x + (b * gram + c * gram @ gram) @ x
    if transposed:
        x = x.T
    return x.to(update.dtype)


class MuonAdamW(torch.optim.Optimizer):
    """Groups with `kind="muon"` get Muon, groups with `kind="adamw"` get AdamW."""

    def __init__(self, groups: list[dict], lr: float, betas: tuple[float, float] = (0.9, 0.95),
                 momentum: float = 0.95, eps: float = 1e-8) -> None:
        for group in groups:
            if group.get("kind") not in ("muon", "adamw"):
                raise ValueError("every parameter group needs kind 'muon' or 'adamw'")
        defaults = dict(lr=lr, betas=betas, momentum=momentum, eps=eps, weight_decay=0.0,
                        lr_scale=1.0)
        super().__init__(groups, defaults)

    @torch.no_grad()
    def step(self, closure=None):  # torch's signature
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr = group["lr"] * group["lr_scale"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                if group["kind"] == "muon":
                    self._muon(p, group, lr)
                else:
                    self._adamw(p, group, lr)
        return loss

    def _muon(self, p: Tensor, group: dict, lr: float) -> None:
        state = self.state[p]
        if "momentum_buffer" not in state:
            state["momentum_buffer"] = torch.zeros_like(p)
        buf = state["momentum_buffer"]
        buf.mul_(group["momentum"]).add_(p.grad)
        update = orthogonalize(p.grad.add(buf, alpha=group["momentum"]))  # Nesterov
        # Equal RMS per element for tall and wide matrices.
        update *= math.sqrt(max(1.0, p.size(0) / p.size(1)))
        p.mul_(1 - lr * group["weight_decay"]).add_(update, alpha=-lr)

    def _adamw(self, p: Tensor, group: dict, lr: float) -> None:
        state = self.state[p]
        if "step" not in state:
            state["step"] = torch.zeros((), dtype=torch.float32)
            state["exp_avg"] = torch.zeros_like(p)
            state["exp_avg_sq"] = torch.zeros_like(p)
        beta1, beta2 = group["betas"]
        state["step"] += 1
        t = float(state["step"])
        state["exp_avg"].lerp_(p.grad, 1 - beta1)
        state["exp_avg_sq"].mul_(beta2).addcmul_(p.grad, p.grad, value=1 - beta2)
        denom = (state["exp_avg_sq"] / (1 - beta2**t)).sqrt_().add_(group["eps"])
        p.mul_(1 - lr * group["weight_decay"])
        p.addcdiv_(state["exp_avg"], denom, value=-lr / (1 - beta1**t))


def muon_groups(model: nn.Module, weight_decay: float, lr_scale: float) -> list[dict]:
    """Hidden 2-d weights (every block's matrices) on Muon; embeddings, the tied head and 1-d
    parameters on AdamW (matrices decayed, gains not)."""
    embeddings = {id(m.weight) for m in model.modules() if isinstance(m, nn.Embedding)}
    muon, adam_decay, adam_plain = [], [], []
    for p in model.parameters():
        if not p.requires_grad:
            continue
        if p.dim() == 2 and id(p) not in embeddings:
            muon.append(p)
        elif p.dim() >= 2:
            adam_decay.append(p)
        else:
            adam_plain.append(p)
    groups = [
        {"params": muon, "kind": "muon", "weight_decay": weight_decay, "lr_scale": lr_scale},
        {"params": adam_decay, "kind": "adamw", "weight_decay": weight_decay},
        {"params": adam_plain, "kind": "adamw", "weight_decay": 0.0},
    ]
    return [g for g in groups if g["params"]]
