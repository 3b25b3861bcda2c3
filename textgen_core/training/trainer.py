"""The GPT training loop, explicit and in one place.

Each iteration: set the learning rate for this step, draw a batch, forward/backward (with
gradient accumulation), clip, step. Every `eval_interval` steps: train/val loss on fixed
batches, a short sample, a metrics line and the loss plot. Every `checkpoint_interval` steps
and at the end: an atomic checkpoint holding everything needed to continue bit-for-bit (model,
optimizer, step, RNG and data-generator states).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import torch
from rich.console import Console
from torch.nn.parallel import DistributedDataParallel

from runtime.tokenizer import CharTokenizer, tokenizer_from_dict
from textgen_core.data.batches import BatchSampler
from textgen_core.data.corpus import resolve_corpus
from textgen_core.data.streams import StreamSampler
from textgen_core.data.token_store import load_token_splits
from textgen_core.errors import TrainingDivergedError
from textgen_core.models.gpt import GPT, GPTConfig
from textgen_core.training.checkpoint import (
    make_checkpoint,
    remove_stale_temporaries,
    save_checkpoint,
)
from textgen_core.training.cli_outcome import RunResult
from textgen_core.training.config import TrainConfig, lr_at
from textgen_core.training.device import (
    autocast,
    grad_scaler,
    resolve_device,
    should_compile,
    synchronize,
    training_dtype,
)
from textgen_core.training.distributed import (
    DistContext,
    any_rank,
    gather_generator_states,
    mean_over_ranks,
    on_every_rank,
    rank_device,
    shard,
)
from textgen_core.training.eval_sample import SAMPLE_SEED, sample_text
from textgen_core.training.evaluation import estimate_loss
from textgen_core.training.metrics_log import MetricsLog, metrics_path, plot_losses, plot_path, read_metrics
from textgen_core.training.mfu import device_peak_flops, flops_per_token
from textgen_core.training.optimizer import make_optimizer
from textgen_core.training.progress import TrainingDisplay
from textgen_core.training.rng import capture_rng, restore_rng
from textgen_core.training.run_rules import check_same_corpus
from textgen_core.training.run_spec import RunSpec
from textgen_core.training.stateful import StatefulBatches, StatefulForward, estimate_stream_loss
from textgen_core.training.stop_flag import StopFlag, run_end


def train_gpt(
    spec: RunSpec[GPTConfig, TrainConfig],
    display_factory: Callable[[int, int], TrainingDisplay] = TrainingDisplay,
) -> RunResult:
    return on_every_rank(spec.device, lambda ctx: _train(spec, display_factory, ctx))


def _train(
    spec: RunSpec[GPTConfig, TrainConfig],
    display_factory: Callable[[int, int], TrainingDisplay],
    ctx: DistContext,
) -> RunResult:
    tc, out = spec.train_config, spec.out
    device = rank_device(resolve_device(spec.device), ctx)
    torch.manual_seed(tc.seed)  # the same initial weights on every rank

    source = spec.resume_from or spec.init_from
    tokenizer = tokenizer_from_dict(source["tokenizer"]) if source else None
    splits = load_token_splits(resolve_corpus(spec.corpus, spec.encoding), tokenizer, spec.tokenizer)
    fingerprint = splits.meta["fingerprint"]
    if spec.resume_from is not None:
        check_same_corpus(spec.resume_from["train_state"], fingerprint)
    tokenizer = splits.tokenizer
    config = spec.model_config
    if source is None:
        config = GPTConfig(**{**config.to_dict(), "vocab_size": tokenizer.vocab_size})

    model = GPT(config)
    if source is not None:
        model.load_state_dict(source["model"])
    model.to(device)
    optimizer = make_optimizer(model, tc, device)
    scaler = grad_scaler(device)  # pass-through except CUDA fp16
    batch_generator = torch.Generator().manual_seed(tc.seed + ctx.rank)

    state: dict[str, Any] = {"step": 0, "tokens_seen": 0, "val_loss": math.nan,
                             "best_val_loss": math.inf, "train_seconds": 0.0}
    if spec.resume_from is not None:
        saved = spec.resume_from["train_state"]
        optimizer.load_state_dict(spec.resume_from["optimizer"])
        restore_rng(saved["rng"], batch_generator, rank=ctx.rank, world_size=ctx.world_size)
        for key in state:
            state[key] = saved.get(key, state[key])

    train_batches = BatchSampler(
        shard(splits.train, ctx), config.block_size, tc.batch_size, batch_generator, device,
        split="train",
    )
    BatchSampler(splits.val, config.block_size, 1, batch_generator, device, split="validation")
    # A stateful yoke trains on consecutive windows, its state carried between them (TBPTT).
    state_size = config.yoke_state_size
    stream = None
    if state_size:
        stream = StatefulBatches(StreamSampler(
            shard(splits.train, ctx), config.block_size, tc.batch_size, tc.yoke_windows,
            batch_generator, device, split="train",
        ), state_size)
        # Evaluation reads the validation split as streams too: fail now, not at the first eval.
        StreamSampler(splits.val, config.block_size, tc.batch_size, tc.yoke_windows,
                      batch_generator, device, split="validation")
        saved_stream = (spec.resume_from or {}).get("train_state", {}).get("yoke_stream")
        if saved_stream is not None and ctx.world_size == 1:
            stream.load_state_dict(saved_stream)
    wrapped: torch.nn.Module = StatefulForward(model) if stream is not None else model
    if ctx.enabled:
        wrapped = DistributedDataParallel(
            wrapped, device_ids=[ctx.local_rank] if device.type == "cuda" else None
        )
    compiled = torch.compile(wrapped) if should_compile(spec.compile, device) else wrapped

    if ctx.is_main:
        remove_stale_temporaries(out)
    log = MetricsLog(metrics_path(out), fresh=spec.resume_from is None, enabled=ctx.is_main,
                     resume_step=state["step"])
    tokens_per_step = (
        tc.batch_size * tc.gradient_accumulation_steps * config.block_size * ctx.world_size
    )
    peak = device_peak_flops(device)
    flops_token = flops_per_token(config, model.num_parameters())
    if spec.resume_from is None:
        log.append({"event": "start", "corpus": spec.corpus, "params": model.num_parameters(),
                    "model_config": config.to_dict(), "train_config": tc.to_dict(),
                    "device": str(device), "amp": str(training_dtype(device)),
                    "init_from": spec.init_from_path})

    def save() -> None:
        # Collective: every rank contributes its data-generator state, rank 0 writes.
        rng = capture_rng(batch_generator)
        rng["batch_by_rank"] = gather_generator_states(rng["batch"], ctx, device)
        if not ctx.is_main:
            return
        payload = make_checkpoint(
            kind="gpt",
            model_config=config.to_dict(),
            tokenizer=tokenizer.to_dict(),
            model_state=model.state_dict(),
            optimizer_state=optimizer.state_dict(),
            train_state={**state, "rng": rng, "world_size": ctx.world_size,
                         "corpus": spec.corpus, "corpus_fingerprint": fingerprint,
                         "encoding": spec.encoding,
                         **({"yoke_stream": stream.state_dict()} if stream is not None else {})},
            train_config=tc.to_dict(),
        )
        save_checkpoint(payload, out)

    def evaluate(step: int, speed: float) -> None:
        if not ctx.is_main:
            return
        # The unwrapped model: a DDP forward on one rank alone would wait for the others.
        kwargs = dict(block_size=config.block_size, batch_size=tc.batch_size,
                      iters=tc.eval_iters, device=device)
        if stream is not None:
            evaluated = compiled if not ctx.enabled else StatefulForward(model)
            kwargs.update(windows=tc.yoke_windows, state_size=state_size)
            train_loss = estimate_stream_loss(evaluated, splits.train, split="train", **kwargs)
            val_loss = estimate_stream_loss(evaluated, splits.val, split="validation", **kwargs)
        else:
            evaluated = compiled if not ctx.enabled else model
            train_loss = estimate_loss(evaluated, splits.train, split="train", **kwargs)
            val_loss = estimate_loss(evaluated, splits.val, split="validation", **kwargs)
        state["val_loss"] = val_loss
        state["best_val_loss"] = min(state["best_val_loss"], val_loss)
        sample = _sample_text(model, tokenizer, tc.sample_tokens, device)
        display.evaluation(step, train_loss, val_loss, speed, sample)
        log.append({"event": "eval", "step": step, "tokens": state["tokens_seen"],
                    "train_loss": train_loss, "val_loss": val_loss, "lr": lr_at(step - 1, tc),
                    "tokens_per_s": speed, "train_seconds": state["train_seconds"],
                    "sample": sample})
        plot_losses(read_metrics(log.path), plot_path(out))

    stop = StopFlag()
    losses: list[float] = []
    speed, smoothed = 0.0, math.nan
    start_step = state["step"]
    end_step = run_end(start_step, tc.max_iters)
    compiled.train()
    display_cm = (display_factory(tc.max_iters, start_step) if ctx.is_main
                  else TrainingDisplay(tc.max_iters, start_step, console=Console(quiet=True)))
    with display_cm as display, stop.installed():
        while state["step"] < end_step and not any_rank(stop.requested, ctx, device):
            step = state["step"]
            lr = lr_at(step, tc)
            for group in optimizer.param_groups:
                group["lr"] = lr
            t0 = time.perf_counter()
            step_loss = 0.0
            for micro in range(tc.gradient_accumulation_steps):
                if ctx.enabled:  # average gradients across ranks once, on the last micro-step
                    wrapped.require_backward_grad_sync = micro == tc.gradient_accumulation_steps - 1
                if stream is not None:
                    loss = stream.loss(compiled, device)
                else:
                    x, y = train_batches.next()
                    with autocast(device, training=True):
                        _, loss, _ = compiled(x, y)
                loss = loss / tc.gradient_accumulation_steps
                scaler.scale(loss).backward()
                step_loss += float(loss.detach())
            if tc.grad_clip > 0:
                scaler.unscale_(optimizer)  # clip true gradients, not fp16-scaled ones
                torch.nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip)
            scaler.step(optimizer)
            scaler.update()
            optimizer.zero_grad(set_to_none=True)
            synchronize(device)
            step_loss = mean_over_ranks(step_loss, ctx, device)
            dt = time.perf_counter() - t0
            if not math.isfinite(step_loss):
                raise TrainingDivergedError(
                    f"loss became {step_loss} at step {step + 1}; the last checkpoint is kept. "
                    "Lower --learning-rate or raise --warmup-iters"
                )
            state["step"] = step + 1
            state["tokens_seen"] += tokens_per_step
            state["train_seconds"] += dt
            losses.append(step_loss)
            # Skip the first steps (warm-up, compilation) in the speed estimate.
            rate = tokens_per_step / dt
            speed = rate if step == start_step or speed == 0.0 else 0.9 * speed + 0.1 * rate
            smoothed = step_loss if math.isnan(smoothed) else 0.9 * smoothed + 0.1 * step_loss
            mfu = flops_token * speed / peak if peak else None
            display.step(state["step"], smoothed, speed, mfu)
            done = state["step"]
            if done % tc.log_interval == 0:
                log.append({"event": "train", "step": done, "tokens": state["tokens_seen"],
                            "loss": step_loss, "lr": lr, "tokens_per_s": speed})
            last = done == end_step
            if done % tc.eval_interval == 0 or last:
                evaluate(done, speed)
            if done % tc.checkpoint_interval == 0 or last:
                save()
        interrupted = any_rank(stop.requested, ctx, device) and state["step"] < end_step
        if interrupted:
            save()
            display.message(f"interrupted: saved {out} at step {state['step']}", style="yellow")
    return RunResult(
        step=state["step"], val_loss=state["val_loss"], best_val_loss=state["best_val_loss"],
        tokens_per_s=speed, train_seconds=state["train_seconds"], interrupted=interrupted,
        losses=losses, is_main=ctx.is_main,
    )


def _sample_text(model: GPT, tokenizer: CharTokenizer, max_new_tokens: int, device: torch.device) -> str:
    from textgen_core.sampling import generate

    return sample_text(model, tokenizer, max_new_tokens, lambda prompt: generate(
        model, tokenizer, prompt, max_new_tokens=max_new_tokens, temperature=0.8,
        top_k=None, top_p=None, repetition_penalty=1.0, seed=SAMPLE_SEED, device=device,
    ))
