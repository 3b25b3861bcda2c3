"""The GPT training loop, explicit and in one place.

Each iteration: set the learning rate for this step, draw a batch, forward/backward (with
gradient accumulation), clip, step. Every `eval_interval` steps: train/val loss on fixed
batches, a short sample, a metrics line and the loss plot. Every `checkpoint_interval` steps
and at the end: an atomic checkpoint holding everything needed to continue bit-for-bit (model,
optimizer, step, RNG and data-generator states).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch
from rich.console import Console
from torch.nn.parallel import DistributedDataParallel

from runtime.tokenizer import CharTokenizer
from textgen_core.data.batches import BatchSampler
from textgen_core.data.streams import StreamSampler
from textgen_core.models.gpt import GPT, GPTConfig
from textgen_core.models.size_limits import check_new_model
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
)
from textgen_core.training.distributed import (
    DistContext,
    any_rank,
    broadcast_from_main,
    gathered_rng,
    mean_over_ranks,
    on_every_rank,
    rank_device,
    shard,
)
from textgen_core.training.dtype_choice import (
    DTYPES,
    RECHECK_AFTER,
    DtypeDecision,
    decision,
    far_from_measured,
    measured_timings,
)
from textgen_core.training.evaluation import SAMPLE_SEED, estimate_loss, sample_text
from textgen_core.training.loop import (
    StopFlag,
    Throughput,
    check_finite,
    due_after,
    run_end,
    save_if_interrupted,
    token_run_data,
    token_run_state,
)
from textgen_core.training.metrics_log import MetricsLog, metrics_path, plot_losses, plot_path, read_metrics
from textgen_core.training.mfu import device_peak_flops, flops_per_token
from textgen_core.training.optimizer import make_optimizer
from textgen_core.training.progress import TrainingDisplay
from textgen_core.training.run_config import RunSpec
from textgen_core.training.run_summary import measuring_note, show, token_run_summary
from textgen_core.training.stateful import StatefulBatches, StatefulForward, estimate_stream_loss
from textgen_core.training.time_budget import budget_for, decay_progress, step_cap, with_budget_steps


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
    splits = token_run_data(spec)
    fingerprint, tokenizer = splits.meta["fingerprint"], splits.tokenizer
    config = spec.model_config
    if source is None:
        config = GPTConfig(**{**config.to_dict(), "vocab_size": tokenizer.vocab_size})
        check_new_model(lambda: GPT(config), config, layers=("n_layer",), contexts=("block_size",))

    model = GPT(config)
    if source is not None:
        model.load_state_dict(source["model"])
    model.to(device)
    optimizer = make_optimizer(model, tc, device)
    saved = spec.resume_from["train_state"] if spec.resume_from else {}
    decided = decision(device, config, tc.batch_size, requested=tc.dtype,
                       saved=saved.get("compute_dtype"), saved_device=saved.get("compute_device"))
    compute, dtype_timings = decided.choice, decided.timings
    if compute is None:  # measured by rank 0 alone: ranks timing at once would slow each other
        compute = "fp32"
        if ctx.is_main:
            measuring_note()
            dtype_timings = measured_timings(config, tc.batch_size)
            compute = min(dtype_timings, key=dtype_timings.__getitem__)
    if ctx.enabled:  # every rank computes as rank 0 chose (a cache another rank just wrote aside)
        compute = list(DTYPES)[int(broadcast_from_main(float(list(DTYPES).index(compute)), ctx, device))]
    compute_dtype = DTYPES[compute]
    scaler = grad_scaler(device, compute_dtype)  # pass-through except CUDA fp16
    batch_generator = torch.Generator().manual_seed(tc.seed + ctx.rank)

    state = token_run_state(spec.resume_from, optimizer, batch_generator, ctx)

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
        ), state_size, compute_dtype)
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
    compiling = should_compile(spec.compile, device)
    compiled = torch.compile(wrapped) if compiling else wrapped

    if ctx.is_main:
        remove_stale_temporaries(out)
    log = MetricsLog(metrics_path(out), fresh=spec.resume_from is None, enabled=ctx.is_main,
                     resume_step=state["step"], mirrors=spec.log)
    tokens_per_step = (
        tc.batch_size * tc.gradient_accumulation_steps * config.block_size * ctx.world_size
    )
    peak = device_peak_flops(device)
    flops_token = flops_per_token(config, model.num_parameters())
    start_step = state["step"]
    end_step = run_end(start_step, step_cap(spec, tc.max_iters))
    summary = token_run_summary("gpt", model, spec, splits, device, compute, decided.reason,
                                dtype_timings, compiling, ctx.world_size, start_step, end_step,
                                (str(out), str(metrics_path(out)), str(plot_path(out))))
    summary = with_budget_steps(summary, spec, start_step, end_step)
    if ctx.is_main:
        show(summary)
    if spec.resume_from is None:
        log.append({"event": "start", "corpus": spec.corpus, "params": model.num_parameters(),
                    "model_config": config.to_dict(), "train_config": tc.to_dict(),
                    "device": str(device), "amp": None if compute_dtype is None else str(compute_dtype),
                    "compute_dtype": compute, "init_from": spec.init_from_path,
                    "summary": summary.to_dict()})

    def save() -> None:
        rng = gathered_rng(batch_generator, ctx, device)  # collective
        if rng is None:  # rank 0 writes
            return
        payload = make_checkpoint(
            kind="gpt",
            model_config=config.to_dict(),
            tokenizer=tokenizer.to_dict(),
            model_state=model.state_dict(),
            optimizer_state=optimizer.state_dict(),
            train_state={**state, "rng": rng, "world_size": ctx.world_size,
                         "corpus": spec.corpus, "corpus_fingerprint": fingerprint,
                         "encoding": spec.encoding, "compute_dtype": compute,
                         "compute_device": device.type,
                         **({"yoke_stream": stream.state_dict()} if stream is not None else {})},
            # A budgeted run is saved as the step schedule it turned out to be.
            train_config=tc.to_dict() if budget is None else {
                **tc.to_dict(), **budget.saved_steps(state["step"]), "lr_decay_iters": 0},
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
                    "train_loss": train_loss, "val_loss": val_loss,
                    "lr": lr_at(step - 1, tc) if budget is None else budget.last_lr,
                    "tokens_per_s": speed, "train_seconds": state["train_seconds"],
                    "sample": sample})
        plot_losses(read_metrics(log.path), plot_path(out))

    stop = StopFlag()
    losses: list[float] = []
    throughput = Throughput()
    step_times: list[float] = []  # the first RECHECK_AFTER steps', for the dtype re-check
    compiled.train()
    display_cm = (display_factory(tc.max_iters, start_step) if ctx.is_main
                  else TrainingDisplay(tc.max_iters, start_step, console=Console(quiet=True)))
    # The resumed part of a saved decay, continued to its end at this run's budget.
    resumed_progress = (decay_progress(start_step, tc.warmup_iters, tc.decay_iters)
                        if spec.resume_from is not None else 0.0)
    budget = budget_for(spec, start_step, tc.max_iters, tc.warmup_iters, resumed_progress, ctx, device)
    with display_cm as display, stop.installed():
        while (state["step"] < end_step and not any_rank(stop.requested, ctx, device)
               and (budget is None or budget.running())):
            step = state["step"]
            lr = lr_at(step, tc) if budget is None else budget.lr(step, tc.learning_rate, tc.min_lr)
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
                    with autocast(device, dtype=compute_dtype):
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
            check_finite(step_loss, step + 1, "Lower --learning-rate or raise --warmup-iters")
            state["step"] = done = step + 1
            state["tokens_seen"] += tokens_per_step
            state["train_seconds"] += dt
            losses.append(step_loss)
            throughput.update(tokens_per_step, dt, step_loss)
            speed = throughput.speed
            if len(step_times) < RECHECK_AFTER:
                step_times.append(dt / tc.gradient_accumulation_steps)
                if len(step_times) == RECHECK_AFTER and not ctx.enabled and stream is None:
                    _recheck_dtype(decided, step_times, compute, config, tc.batch_size, display,
                                   log, done)
            display.step(done, throughput.loss, speed, flops_token * speed / peak if peak else None)
            if budget is None:
                due = due_after(done, end_step, tc)
            else:
                due = budget.stepped(done, end_step, tc.log_interval)
                display.plan(budget.projected_end(done))
            if due.log:
                log.append({"event": "train", "step": done, "tokens": state["tokens_seen"],
                            "loss": step_loss, "lr": lr, "tokens_per_s": speed})
            if due.evaluate:
                evaluate(done, speed)
            if due.save:
                save()
        interrupted = save_if_interrupted(stop, state, end_step, ctx, device, save, display, out)
    log.close()
    return RunResult(
        step=state["step"], val_loss=state["val_loss"], best_val_loss=state["best_val_loss"],
        tokens_per_s=throughput.speed, train_seconds=state["train_seconds"], interrupted=interrupted,
        losses=losses, is_main=ctx.is_main,
    )


def _recheck_dtype(decided: DtypeDecision, step_times: list[float], compute: str, config: GPTConfig,
                   batch_size: int, display: TrainingDisplay, log: MetricsLog, step: int) -> None:
    """A cached dtype choice whose measurement is far from this run's steps (made under load,
    or on other cores) is measured again and the cache corrected, in plain view. The run keeps
    the dtype it started with, so that a run is the same computation from its first step to its
    last (and a resumed run the same as an uninterrupted one); the next run uses the new choice."""
    step_ms = statistics.median(step_times[1:]) * 1e3
    if not far_from_measured(step_ms, decided):
        return
    assert decided.timings is not None  # far_from_measured says so
    display.message(f"steps take {step_ms:,.1f} ms, but {compute} was cached for this shape when they "
                    f"took {decided.timings[compute]:,.1f} ms: measuring fp32 against bf16 again",
                    style="yellow")
    timings = measured_timings(config, batch_size)
    choice = min(timings, key=timings.__getitem__)
    after = ("the cached choice stands" if choice == compute else
             f"this run goes on in {compute}; the next run of this shape computes in {choice}")
    display.message(f"now fp32 {timings['fp32']:,.1f} ms, bf16 {timings['bf16']:,.1f} ms per step: "
                    f"{after}", style="yellow")
    log.append({"event": "dtype_recheck", "step": step, "step_ms": round(step_ms, 2),
                "cached": decided.timings, "measured": timings, "kept": compute, "next": choice})


def _sample_text(model: GPT, tokenizer: CharTokenizer, max_new_tokens: int, device: torch.device) -> str:
    from textgen_core.sampling import generate

    return sample_text(model, tokenizer, max_new_tokens, lambda prompt: generate(
        model, tokenizer, prompt, max_new_tokens=max_new_tokens, temperature=0.8,
        top_k=None, top_p=None, repetition_penalty=1.0, seed=SAMPLE_SEED, device=device,
    ))
