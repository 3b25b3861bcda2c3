"""The layer-stack training loop, explicit and in one place.

Each iteration: learning rate (warm-up, then the reduce-on-plateau rule), a batch, forward and
the hand-written backward, gradient-norm clipping of the RNN/LSTM layers, an AdamW step with
decoupled L2. Every `eval_interval` steps: train/val loss on fixed batches, the plateau rule, a
sample, a metrics line and the loss plot. Every `checkpoint_interval` steps and at the end: an
atomic `kind="stack"` checkpoint with everything needed to continue bit-for-bit (weights,
optimizer, plateau state, step, RNG and data position).

Training runs in float32 on every device: the hand-written backward functions compute in the
dtype of their inputs, and mixed precision would need a loss scale they do not implement.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from rich.console import Console
from torch.nn.parallel import DistributedDataParallel

from runtime.tokenizer import CharTokenizer
from textgen_core.data.batches import BatchSampler
from textgen_core.models.size_limits import check_new_model
from textgen_core.models.stack.model import Stack
from textgen_core.models.stack.spec import LayersFile, StackConfig
from textgen_core.sampling import generate
from textgen_core.training.checkpoint import make_checkpoint, remove_stale_temporaries, save_checkpoint
from textgen_core.training.cli_outcome import RunResult
from textgen_core.training.device import resolve_device, should_compile
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
from textgen_core.training.progress import TrainingDisplay
from textgen_core.training.resume_checks import guard_optimizer
from textgen_core.training.run_config import RunSpec
from textgen_core.training.run_summary import show, token_run_summary
from textgen_core.training.stack_config import Plateau, StackTrainConfig, lr_for_step
from textgen_core.training.time_budget import budget_for, step_cap, with_budget_steps


@dataclass(frozen=True)
class StackModelRequest:
    """A fresh stack run's model: its layers file and the block_size, n_embd, n_head and
    dropout settings (preset < layers file < flags). Resuming and fine-tuning take the
    checkpoint's model instead, and give None."""

    layers: LayersFile
    settings: dict[str, Any] = field(default_factory=dict)


StackRunSpec = RunSpec[StackModelRequest | None, StackTrainConfig]


def make_optimizer(model: Stack, tc: StackTrainConfig) -> torch.optim.AdamW:
    """AdamW: decoupled L2 on weight matrices and embeddings, none on biases and norm gains."""
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": tc.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    # Guarded: a saved state is matched against these parameters before it is loaded.
    return guard_optimizer(torch.optim.AdamW(groups, lr=tc.learning_rate, betas=(tc.beta1, tc.beta2)))


def build_config(spec: StackRunSpec, vocab_size: int) -> StackConfig:
    source = spec.resume_from or spec.init_from
    if source is not None:  # fine-tuning and resuming keep the checkpoint's layers
        return StackConfig.from_dict(dict(source["model_config"]))
    request = spec.model_config
    assert request is not None
    return StackConfig(vocab_size=vocab_size, **request.settings,
                       layers=request.layers.layers, source=request.layers.source)


def train_stack(
    spec: StackRunSpec, display_factory: Callable[[int, int], TrainingDisplay] = TrainingDisplay
) -> RunResult:
    return on_every_rank(spec.device, lambda ctx: _train(spec, display_factory, ctx))


def _train(spec: StackRunSpec, display_factory: Callable[[int, int], TrainingDisplay],
           ctx: DistContext) -> RunResult:
    tc, out = spec.train_config, spec.out
    device = rank_device(resolve_device(spec.device), ctx)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True  # fp32 weights, TF32 tensor-core matmuls
    torch.manual_seed(tc.seed)

    source = spec.resume_from or spec.init_from
    splits = token_run_data(spec)
    fingerprint, tokenizer = splits.meta["fingerprint"], splits.tokenizer
    config = build_config(spec, tokenizer.vocab_size)
    if source is None:
        check_new_model(lambda: Stack(config), config, contexts=("block_size",))
    model = Stack(config)
    if source is not None:
        model.load_state_dict(source["model"])
    model.to(device)
    optimizer = make_optimizer(model, tc)
    batch_generator = torch.Generator().manual_seed(tc.seed + ctx.rank)
    plateau = Plateau(lr=tc.learning_rate)
    state = token_run_state(spec.resume_from, optimizer, batch_generator, ctx)
    if spec.resume_from is not None:
        plateau = Plateau(**spec.resume_from["train_state"]["plateau"])

    train_batches = BatchSampler(shard(splits.train, ctx), config.block_size, tc.batch_size,
                                 batch_generator, device, split="train")
    BatchSampler(splits.val, config.block_size, 1, batch_generator, device, split="validation")
    wrapped: torch.nn.Module = model
    if ctx.enabled:
        wrapped = DistributedDataParallel(
            model, device_ids=[ctx.local_rank] if device.type == "cuda" else None)
    compiling = should_compile(spec.compile, device)
    compiled = torch.compile(wrapped) if compiling else wrapped
    recurrent_params = [p for m in model.recurrent_modules() for p in m.parameters()]

    if ctx.is_main:
        remove_stale_temporaries(out)
    log = MetricsLog(metrics_path(out), fresh=spec.resume_from is None, enabled=ctx.is_main,
                     resume_step=state["step"], mirrors=spec.log)
    tokens_per_step = tc.batch_size * config.block_size * ctx.world_size
    start_step = state["step"]
    end_step = run_end(start_step, step_cap(spec, tc.max_iters))
    summary = token_run_summary("stack", model, spec, splits, device, "fp32", "family", None,
                                compiling, ctx.world_size, start_step, end_step,
                                (str(out), str(metrics_path(out)), str(plot_path(out))))
    summary = with_budget_steps(summary, spec, start_step, end_step)
    if ctx.is_main:
        show(summary)
    if spec.resume_from is None:
        log.append({"event": "start", "model": "stack", "corpus": spec.corpus,
                    "params": model.num_parameters(), "model_config": config.to_dict(),
                    "train_config": tc.to_dict(), "device": str(device),
                    "init_from": spec.init_from_path, "summary": summary.to_dict()})

    def save() -> None:
        rng = gathered_rng(batch_generator, ctx, device)  # collective
        if rng is None:  # rank 0 writes
            return
        payload = make_checkpoint(
            kind="stack", model_config=config.to_dict(), tokenizer=tokenizer.to_dict(),
            model_state=model.state_dict(), optimizer_state=optimizer.state_dict(),
            train_state={**state, "rng": rng, "plateau": plateau.to_dict(),
                         "world_size": ctx.world_size, "corpus": spec.corpus,
                         "corpus_fingerprint": fingerprint, "encoding": spec.encoding},
            # A budgeted run is saved as the step schedule it turned out to be.
            train_config=tc.to_dict() if budget is None else {
                **tc.to_dict(), **budget.saved_steps(state["step"])},
        )
        save_checkpoint(payload, out)

    def evaluate(step: int, speed: float) -> None:
        if ctx.is_main:
            _evaluate_on_main(step, speed)
        # The plateau rule ran on rank 0 alone; every rank steps with its learning rate.
        plateau.lr = broadcast_from_main(plateau.lr, ctx, device)

    def _evaluate_on_main(step: int, speed: float) -> None:
        # The unwrapped model: a DDP forward on one rank alone would wait for the others.
        evaluated = model if ctx.enabled else compiled
        kwargs = dict(block_size=config.block_size, batch_size=tc.batch_size, iters=tc.eval_iters,
                      device=device)
        train_loss = estimate_loss(evaluated, splits.train, split="train", **kwargs)
        val_loss = estimate_loss(evaluated, splits.val, split="validation", **kwargs)
        state["val_loss"] = val_loss
        state["best_val_loss"] = min(state["best_val_loss"], val_loss)
        if plateau.update(val_loss, tc):
            display.message(f"validation loss stalled for more than {tc.patience} evaluations: "
                            f"learning rate now {plateau.lr:.3g}", style="yellow")
        sample = _sample_text(model, tokenizer, tc.sample_tokens, device)
        display.evaluation(step, train_loss, val_loss, speed, sample)
        log.append({"event": "eval", "step": step, "tokens": state["tokens_seen"],
                    "train_loss": train_loss, "val_loss": val_loss,
                    "lr": plateau.lr if budget is None else budget.last_lr,
                    "tokens_per_s": speed, "train_seconds": state["train_seconds"], "sample": sample})
        plot_losses(read_metrics(log.path), plot_path(out))

    stop = StopFlag()
    losses: list[float] = []
    throughput = Throughput()
    model.train()
    display_cm = (display_factory(tc.max_iters, start_step) if ctx.is_main
                  else TrainingDisplay(tc.max_iters, start_step, console=Console(quiet=True)))
    # Under a budget the plateau rule's rate is the peak of a cosine decay that ends on time.
    budget = budget_for(spec, start_step, tc.max_iters, tc.warmup_iters, 0.0, ctx, device)
    with display_cm as display, stop.installed():
        while (state["step"] < end_step and not any_rank(stop.requested, ctx, device)
               and (budget is None or budget.running())):
            step = state["step"]
            lr = (lr_for_step(step, plateau, tc) if budget is None
                  else budget.lr(step, plateau.lr, min(tc.min_lr, plateau.lr)))
            for group in optimizer.param_groups:
                group["lr"] = lr
            t0 = time.perf_counter()
            x, y = train_batches.next()
            _, loss, _ = compiled(x, y)
            loss.backward()
            if recurrent_params and tc.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(recurrent_params, tc.grad_clip)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            step_loss = mean_over_ranks(float(loss.detach()), ctx, device)
            dt = time.perf_counter() - t0
            check_finite(step_loss, step + 1, "Lower --learning-rate")
            state["step"] = done = step + 1
            state["tokens_seen"] += tokens_per_step
            state["train_seconds"] += dt
            losses.append(step_loss)
            throughput.update(tokens_per_step, dt, step_loss)
            speed = throughput.speed
            display.step(done, throughput.loss, speed, None)
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
        interrupted = save_if_interrupted(stop, state, end_step, ctx, device, save, display, out,
                                          family="stack")
    log.close()
    return RunResult(step=state["step"], val_loss=state["val_loss"],
                     best_val_loss=state["best_val_loss"], tokens_per_s=throughput.speed,
                     train_seconds=state["train_seconds"], interrupted=interrupted, losses=losses,
                     is_main=ctx.is_main)


def _sample_text(model: Stack, tokenizer: CharTokenizer, max_new_tokens: int,
                 device: torch.device) -> str:
    return sample_text(model, tokenizer, max_new_tokens, lambda prompt: generate(
        model, tokenizer, prompt, max_new_tokens=max_new_tokens, temperature=0.8, seed=SAMPLE_SEED,
        device=device))
