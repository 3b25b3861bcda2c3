"""Multi-process data-parallel training under `torchrun` (DistributedDataParallel).

NCCL on CUDA, gloo on CPU. Each rank trains on its own contiguous shard of the training tokens with
its own batch generator; gradients are averaged by DDP. Rank 0 alone evaluates, logs, prints and
writes checkpoints; the batch-generator states of all ranks are gathered into the checkpoint so a
resumed run with the same world size continues every rank's data order.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import torch
from torch import distributed as dist

from textgen_core.training.rng import capture_rng

T = TypeVar("T")


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device_request: str) -> DistContext:
    """Join the process group torchrun describes in the environment; a no-op without torchrun."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1 or "RANK" not in os.environ:
        return DistContext()
    use_cuda = torch.cuda.is_available() and device_request in ("auto", "cuda")
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if use_cuda:
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return DistContext(rank=dist.get_rank(), world_size=dist.get_world_size(), local_rank=local_rank)


def on_every_rank(device_request: str, train: Callable[[DistContext], T]) -> T:
    """Run a training loop in the process group torchrun describes (a plain call without
    torchrun): join it, run `train(ctx)`, wait for every rank on success, and leave the group."""
    ctx = init_distributed(device_request)
    try:
        result = train(ctx)
        finish_together(ctx)  # on success only: after an error the other ranks may never arrive
        return result
    finally:
        shutdown(ctx)


def rank_device(device: torch.device, ctx: DistContext) -> torch.device:
    """A CUDA rank trains on its own local GPU."""
    if ctx.enabled and device.type == "cuda":
        return torch.device("cuda", ctx.local_rank)
    return device


def finish_together(ctx: DistContext) -> None:
    """Wait until every rank is done (rank 0 still saving), so that no rank tears its process group
    down while another is mid-write; without it torchrun's exit code was 1 in one of ~16 runs."""
    if ctx.enabled and dist.is_initialized():
        dist.barrier()


def shutdown(ctx: DistContext) -> None:
    if ctx.enabled and dist.is_initialized():
        # Free DDP's reducer (and the gloo work it holds) before its process group goes: left to
        # interpreter exit, that order is not guaranteed.
        gc.collect()
        dist.destroy_process_group()


def shard(tokens: np.ndarray, ctx: DistContext) -> np.ndarray:
    """This rank's contiguous share of `tokens`."""
    if not ctx.enabled:
        return tokens
    size = len(tokens) // ctx.world_size
    return tokens[ctx.rank * size : (ctx.rank + 1) * size]


def any_rank(flag: bool, ctx: DistContext, device: torch.device) -> bool:
    """True on every rank when `flag` is true on at least one (e.g. Ctrl-C reached one rank)."""
    if not ctx.enabled:
        return flag
    value = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item() > 0)


def mean_over_ranks(value: float, ctx: DistContext, device: torch.device) -> float:
    if not ctx.enabled:
        return value
    tensor = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return float(tensor.item()) / ctx.world_size


def broadcast_from_main(value: float, ctx: DistContext, device: torch.device) -> float:
    """Rank 0's `value` on every rank (a rule that only rank 0 evaluates, e.g. the plateau lr)."""
    if not ctx.enabled:
        return value
    tensor = torch.tensor([value], dtype=torch.float64, device=device)
    dist.broadcast(tensor, src=0)
    return float(tensor.item())


def average_gradients(parameters: list[torch.nn.Parameter], ctx: DistContext) -> None:
    """Average the gradients of `parameters` over the ranks in one all-reduce (what DDP does
    during backward), for a model DDP cannot wrap: the GAN's critic is differentiated twice
    (its gradient penalty), which DDP's reducer does not support."""
    if not ctx.enabled:
        return
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    flat /= ctx.world_size
    offset = 0
    for g in grads:
        g.copy_(flat[offset : offset + g.numel()].view_as(g))
        offset += g.numel()


def gather_generator_states(
    state: torch.Tensor, ctx: DistContext, device: torch.device
) -> list[torch.Tensor]:
    """Every rank's batch-generator state (uint8 tensors of equal size), in rank order."""
    if not ctx.enabled:
        return [state]
    local = state.to(device)
    gathered = [torch.empty_like(local) for _ in range(ctx.world_size)]
    dist.all_gather(gathered, local)
    return [g.cpu() for g in gathered]


def gathered_rng(batch_generator: torch.Generator, ctx: DistContext, device: torch.device
                 ) -> dict[str, Any] | None:
    """Collective, before a checkpoint: the RNG state with every rank's data-generator state
    (`batch_by_rank`) on rank 0, which writes the checkpoint; None on the other ranks."""
    rng = capture_rng(batch_generator)
    rng["batch_by_rank"] = gather_generator_states(rng["batch"], ctx, device)
    return rng if ctx.is_main else None
