"""Training tokens/s of our training step against a plain eager PyTorch loop of the same shape
(the reference), on the same batches, the same device, in one run."""

from __future__ import annotations

import time

import numpy as np
import torch
from torch.nn import functional as F

from benchmarks.report import Row
from textgen_core.data.batches import BatchSampler
from textgen_core.models.gpt import GPT, GPTConfig
from textgen_core.training.config import TrainConfig
from textgen_core.training.device import autocast
from textgen_core.training.optimizer import make_optimizer
from textgen_core.training.presets import PRESETS


def _reference_step(model: GPT, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor) -> None:
    """What a from-scratch loop does: forward, cross-entropy, backward, clip, AdamW step."""
    logits, _, _ = model(x)
    loss = F.cross_entropy(logits.view(-1, logits.size(-1)), y.reshape(-1))
    optimizer.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()


def _our_step(model: GPT, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor,
              device: torch.device) -> None:
    with autocast(device):
        _, loss, _ = model(x, y)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def run(preset: str = "cpu", steps: int = 30, device: str = "cpu") -> list[Row]:
    dev = torch.device(device)
    model_cfg = GPTConfig(**{**PRESETS[preset]["model"], "vocab_size": 84})
    train_cfg = TrainConfig(**{**PRESETS[preset]["train"], "max_iters": 10_000})
    tokens = np.random.default_rng(0).integers(0, 84, 200_000).astype(np.uint16)
    results = {}
    for label in ("reference", "ours"):
        torch.manual_seed(0)
        model = GPT(model_cfg).to(dev).train()
        if label == "reference":
            optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
        else:
            optimizer = make_optimizer(model, train_cfg, dev)
        sampler = BatchSampler(tokens, model_cfg.block_size, train_cfg.batch_size,
                               torch.Generator().manual_seed(0), dev)
        batches = [sampler.next() for _ in range(steps + 3)]
        for x, y in batches[:3]:  # warm-up
            (_reference_step(model, optimizer, x, y) if label == "reference"
             else _our_step(model, optimizer, x, y, dev))
        t0 = time.perf_counter()
        for x, y in batches[3:]:
            (_reference_step(model, optimizer, x, y) if label == "reference"
             else _our_step(model, optimizer, x, y, dev))
        if dev.type == "cuda":
            torch.cuda.synchronize()
        results[label] = steps * train_cfg.batch_size * model_cfg.block_size / (time.perf_counter() - t0)
    m = model_cfg
    shape = f"{m.n_layer}x{m.n_embd}, ctx {m.block_size}, batch {train_cfg.batch_size}"
    return [
        Row("training", f"plain eager loop ({preset})", results["reference"], "tok/s", note=shape),
        Row("training", f"textgen step ({preset})", results["ours"], "tok/s",
            reference=f"plain eager loop ({preset})", note=shape),
    ]
