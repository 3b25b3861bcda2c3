"""Training tokens/s of textgen's step against the nanoGPT-equivalent reference loop
(benchmarks/nanogpt_reference.py): same shape, batch, batches and device, in one run.

Our step is the trainer's: the preset's model and optimizer (`make_optimizer`), the dtype
`--dtype auto` chooses (measured on a CPU and cached, textgen_core/training/dtype_choice.py),
compilation as `--compile auto` decides, clipping, `zero_grad(set_to_none=True)`. The two loops
run in alternating blocks of steps, so load from other processes on a shared machine falls on
both alike; the first steps of each (warm-up, compilation) are not timed.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import torch

from benchmarks.nanogpt_reference import ReferenceGPT, reference_optimizer, reference_step
from benchmarks.report import Row
from textgen_core.data.batches import BatchSampler
from textgen_core.models.gpt import GPT, GPTConfig
from textgen_core.training.config import TrainConfig
from textgen_core.training.device import autocast, should_compile
from textgen_core.training.dtype_choice import DTYPES
from textgen_core.training.dtype_choice import choose as choose_dtype
from textgen_core.training.optimizer import make_optimizer
from textgen_core.training.presets import PRESETS

VOCAB = 84  # shakespeare's character count
Step = Callable[[torch.Tensor, torch.Tensor], None]


def preset_configs(preset: str, **model_overrides: int) -> tuple[GPTConfig, TrainConfig]:
    model = GPTConfig(**{**PRESETS[preset]["model"], "vocab_size": VOCAB, **model_overrides})
    train = TrainConfig(**{**PRESETS[preset]["train"], "max_iters": 10_000})
    return model, train


def our_step(model_cfg: GPTConfig, train_cfg: TrainConfig, device: torch.device) -> tuple[Step, GPT]:
    torch.manual_seed(0)
    model = GPT(model_cfg).to(device).train()
    optimizer = make_optimizer(model, train_cfg, device)
    forward = torch.compile(model) if should_compile("auto", device) else model
    compute = DTYPES[choose_dtype(device, model_cfg, train_cfg.batch_size)]

    def step(x: torch.Tensor, y: torch.Tensor) -> None:
        with autocast(device, dtype=compute):
            _, loss, _ = forward(x, y)
        loss.backward()
        if train_cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), train_cfg.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step, model


def reference_loop(model_cfg: GPTConfig, train_cfg: TrainConfig, device: torch.device) -> Step:
    torch.manual_seed(0)
    c = model_cfg
    model = ReferenceGPT(c.vocab_size, c.block_size, c.n_layer, c.n_head, c.n_embd, c.dropout)
    model = model.to(device).train()
    optimizer = reference_optimizer(model, train_cfg.learning_rate, device)
    forward = torch.compile(model) if device.type == "cuda" else model
    return lambda x, y: reference_step(forward, optimizer, x, y)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def tokens_per_s(steps: dict[str, Step], model_cfg: GPTConfig, batch_size: int,
                 device: torch.device, rounds: int, block: int, warmup: int = 3) -> dict[str, float]:
    """Tokens/s of each step function, timed in alternating blocks of `block` steps."""
    tokens = np.random.default_rng(0).integers(0, VOCAB, 300_000).astype(np.uint16)
    sampler = BatchSampler(tokens, model_cfg.block_size, batch_size,
                           torch.Generator().manual_seed(0), device)
    batches = [sampler.next() for _ in range(block)]
    for step in steps.values():
        for x, y in batches[:warmup]:
            step(x, y)
    _sync(device)
    elapsed = dict.fromkeys(steps, 0.0)
    for r in range(rounds):
        order = list(steps) if r % 2 == 0 else list(reversed(steps))
        for name in order:
            t0 = time.perf_counter()
            for x, y in batches:
                steps[name](x, y)
            _sync(device)
            elapsed[name] += time.perf_counter() - t0
    per_step = batch_size * model_cfg.block_size
    return {name: rounds * block * per_step / seconds for name, seconds in elapsed.items()}


def run_cpu(preset: str = "cpu", rounds: int = 3, block: int = 4) -> list[Row]:
    device = torch.device("cpu")
    model_cfg, train_cfg = preset_configs(preset)
    ours, _ = our_step(model_cfg, train_cfg, device)
    speeds = tokens_per_s({"reference": reference_loop(model_cfg, train_cfg, device), "ours": ours},
                          model_cfg, train_cfg.batch_size, device, rounds, block)
    m = model_cfg
    shape = f"{m.n_layer}x{m.n_embd}, ctx {m.block_size}, batch {train_cfg.batch_size}"
    ref_name = "nanoGPT-style eager loop"
    return [
        Row("training", ref_name, speeds["reference"], "tok/s", note=shape),
        Row("training", f"textgen step (--preset {preset}, "
            f"{choose_dtype(device, model_cfg, train_cfg.batch_size)})", speeds["ours"], "tok/s",
            reference=ref_name, note=shape),
    ]

