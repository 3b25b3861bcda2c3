"""The GAN training loop, explicit and in one place.

Phase 1 (`mle_iters` steps, optional): the generator alone learns the next word with teacher
forcing, so the adversarial phase starts from a generator that already writes words in order.
Phase 2: per generator step, `critic_steps` WGAN-GP critic updates, then one generator update
against the critic. Both players, both Adam states, the step, and every random stream are in the
checkpoint, so a resumed run continues the same run (the seed project rebuilt fresh networks on
resume but kept the optimizers of the old ones).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from rich.console import Console

from runtime.word_tokenizer import WordTokenizer
from textgen_core.data.corpus import resolve_corpus
from textgen_core.data.sentences import load_sentences
from textgen_core.models.gan import GAN, GAN_LAYER_COUNTS, GANConfig, draw_noise
from textgen_core.models.size_limits import check_counts, check_new_model
from textgen_core.training.checkpoint import make_checkpoint, remove_stale_temporaries, save_checkpoint
from textgen_core.training.device import resolve_device, should_compile
from textgen_core.training.distributed import (
    DistContext,
    any_rank,
    average_gradients,
    gathered_rng,
    mean_over_ranks,
    on_every_rank,
    rank_device,
    shard,
)
from textgen_core.training.gan_config import GANTrainConfig
from textgen_core.training.gan_losses import (
    critic_loss,
    fake_rows,
    generate_fake,
    generator_loss,
    gumbel_beta,
    mle_loss,
)
from textgen_core.training.loop import (
    StopFlag,
    Throughput,
    check_finite,
    due_after,
    run_end,
    save_if_interrupted,
)
from textgen_core.training.metrics_log import (
    MetricsLog,
    metrics_path,
    plot_gan_losses,
    plot_path,
    read_metrics,
)
from textgen_core.training.progress import GANDisplay
from textgen_core.training.resume_checks import guard_optimizer
from textgen_core.training.rng import restore_rng
from textgen_core.training.run_config import RunSpec
from textgen_core.training.run_rules import check_same_corpus
from textgen_core.training.run_summary import RunSummary, show
from textgen_core.training.time_budget import budget_for, step_cap, with_budget_steps

EVAL_SEED = 0
EVAL_BATCH = 256
SAMPLES_SHOWN = 3


GANRunSpec = RunSpec[GANConfig, GANTrainConfig]


@dataclass
class GANRunResult:
    step: int
    val_nll: float
    wasserstein: float
    sentences_per_s: float
    train_seconds: float
    interrupted: bool = False
    is_main: bool = True  # False on the non-zero ranks of a distributed run


def make_optimizers(gan: GAN, tc: GANTrainConfig) -> tuple[torch.optim.Adam, torch.optim.Adam]:
    betas = (tc.beta1, tc.beta2)
    # Guarded: a saved state is matched against these parameters before it is loaded.
    return (guard_optimizer(torch.optim.Adam(gan.generator.parameters(), lr=tc.learning_rate, betas=betas),
                            "optimizer.generator"),
            guard_optimizer(torch.optim.Adam(gan.discriminator.parameters(), lr=tc.d_learning_rate,
                                             betas=betas), "optimizer.discriminator"))


def _set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


def train_gan(spec: GANRunSpec,
              display_factory: Callable[[int, int], GANDisplay] = GANDisplay) -> GANRunResult:
    """Under torchrun each rank draws its batches from its own shard of the training sentences
    and both players' gradients are averaged over the ranks before each update (one all-reduce
    per update, not DDP: see distributed.average_gradients); rank 0 alone evaluates and writes."""
    return on_every_rank(spec.device, lambda ctx: _train(spec, display_factory, ctx))


def _train(spec: GANRunSpec, display_factory: Callable[[int, int], GANDisplay],
           ctx: DistContext) -> GANRunResult:
    tc, out = spec.train_config, spec.out
    device = rank_device(resolve_device(spec.device), ctx)
    torch.manual_seed(tc.seed)
    source = spec.resume_from or spec.init_from
    tokenizer = WordTokenizer.from_dict(source["tokenizer"]) if source else None
    config = spec.model_config
    if source is None:  # the sentence arrays are seq_len wide: bounded before they are made
        check_counts(config, layers=GAN_LAYER_COUNTS, contexts=("seq_len",), fresh=True)
    data = load_sentences(resolve_corpus(spec.corpus, spec.encoding), config.seq_len,
                          config.vocab_size, tc.batch_size, tokenizer)
    tokenizer = data.tokenizer
    if spec.resume_from is not None:
        check_same_corpus(spec.resume_from["train_state"], data.fingerprint)
    if source is None:  # a corpus with fewer distinct words than --vocab-size gets a smaller one
        config = GANConfig(**{**config.to_dict(), "vocab_size": tokenizer.vocab_size})
        check_new_model(lambda: GAN(config), config, layers=GAN_LAYER_COUNTS, contexts=("seq_len",))

    gan = GAN(config)
    if source is not None:
        gan.load_state_dict(source["model"])
    gan.to(device)
    opt_g, opt_d = make_optimizers(gan, tc)
    rng = torch.Generator().manual_seed(tc.seed + ctx.rank)
    state: dict[str, Any] = {"step": 0, "sentences_seen": 0, "val_nll": math.nan,
                             "best_val_nll": math.inf, "wasserstein": math.nan, "train_seconds": 0.0}
    if spec.resume_from is not None:
        saved = spec.resume_from["train_state"]
        opt_g.load_state_dict(spec.resume_from["optimizer"]["generator"])
        opt_d.load_state_dict(spec.resume_from["optimizer"]["discriminator"])
        restore_rng(saved["rng"], rng, rank=ctx.rank, world_size=ctx.world_size)
        for key in state:
            state[key] = saved.get(key, state[key])

    train_rows = torch.from_numpy(shard(data.train, ctx)).to(device)
    val_rows = torch.from_numpy(data.val[:EVAL_BATCH]).to(device)
    generator, critic = gan.generator, gan.discriminator
    if should_compile(spec.compile, device):
        # The gradient penalty still runs through the eager gan.discriminator (gan_losses.py).
        generator, critic = torch.compile(generator), torch.compile(critic)

    if ctx.is_main:
        remove_stale_temporaries(out)
    log = MetricsLog(metrics_path(out), fresh=spec.resume_from is None, enabled=ctx.is_main,
                     resume_step=state["step"], mirrors=spec.log)
    summary = RunSummary(
        family="gan", params=sum(p.numel() for p in gan.parameters()),
        shape=f"generator {config.n_noise_blocks}+{config.n_output_blocks} blocks, critic "
              f"{config.critic_layers} blocks, {config.n_embd} wide",
        corpus=spec.corpus, characters=None, tokens=len(data.train) + len(data.val),
        train_tokens=len(data.train), val_tokens=len(data.val),
        tokenizer=f"word, {tokenizer.vocab_size:,} words", device=str(device), dtype="fp32",
        dtype_reason="family", dtype_timings=None, compile=should_compile(spec.compile, device),
        batch_size=tc.batch_size, gradient_accumulation_steps=1, block_size=config.seq_len,
        world_size=ctx.world_size, steps=f"{state['step']} -> {run_end(state['step'], tc.max_iters)}",
        files=(str(out), str(metrics_path(out)), str(plot_path(out))), unit="sentences")
    summary = with_budget_steps(summary, spec, state["step"],
                                run_end(state["step"], step_cap(spec, tc.max_iters)))
    if ctx.is_main:
        show(summary)
    if spec.resume_from is None:
        log.append({"event": "start", "corpus": spec.corpus, "params": gan.num_parameters(),
                    "model_config": config.to_dict(), "train_config": tc.to_dict(),
                    "train_sentences": len(data.train), "val_sentences": len(data.val),
                    "device": str(device), "init_from": spec.init_from_path,
                    "summary": summary.to_dict()})

    def noise(batch: int, generator_: torch.Generator = rng) -> dict[str, torch.Tensor]:
        return draw_noise(config, batch, generator_, device)

    def real_batch() -> torch.Tensor:
        index = torch.randint(len(train_rows), (tc.batch_size,), generator=rng)
        return train_rows[index.to(device)]

    def save() -> None:
        rng_state = gathered_rng(rng, ctx, device)  # collective
        if rng_state is None:  # rank 0 writes
            return
        payload = make_checkpoint(
            kind="gan", model_config=config.to_dict(), tokenizer=tokenizer.to_dict(),
            model_state=gan.state_dict(),
            optimizer_state={"generator": opt_g.state_dict(), "discriminator": opt_d.state_dict()},
            train_state={**state, "rng": rng_state, "world_size": ctx.world_size,
                         "corpus": spec.corpus, "corpus_fingerprint": data.fingerprint,
                         "encoding": spec.encoding},
            train_config=tc.to_dict() if budget is None else {**tc.to_dict(), **budget_steps()},
        )
        save_checkpoint(payload, out)

    def budget_steps() -> dict[str, int]:
        """A budgeted run is saved as the step schedule it turned out to be (or is projected to)."""
        assert budget is not None
        end = budget.saved_steps(state["step"])["max_iters"]
        switch = adversarial_from if adversarial_from is not None else budget.projected_at(
            mle_share, state["step"])
        return {"max_iters": end, "mle_iters": min(switch, end)}

    @torch.no_grad()
    def evaluate(step: int, phase: str) -> None:
        if not ctx.is_main:
            return
        gan.eval()
        fixed = torch.Generator().manual_seed(EVAL_SEED)
        val_nll = math.nan
        if len(val_rows):
            val_nll = float(mle_loss(gan.generator, val_rows, noise(len(val_rows), fixed)))
        fake_ids, probs = generate_fake(gan.generator, noise(max(len(val_rows), SAMPLES_SHOWN), fixed))
        w = math.nan
        if len(val_rows):
            fake = fake_rows(fake_ids[: len(val_rows)], probs[: len(val_rows)], config.critic_input,
                             relaxation["beta"], fixed)  # not the global generator: resumes exactly
            w = float(gan.discriminator(val_rows).mean() - gan.discriminator(fake).mean())
        gan.train()
        state["val_nll"], state["wasserstein"] = val_nll, w
        if math.isfinite(val_nll):
            state["best_val_nll"] = min(state["best_val_nll"], val_nll)
        samples = [tokenizer.decode(row.tolist()) for row in fake_ids[:SAMPLES_SHOWN]]
        display.evaluation(step, phase, val_nll, w, samples)
        log.append({"event": "eval", "step": step, "phase": phase, "val_nll": val_nll,
                    "wasserstein": w, "train_seconds": state["train_seconds"], "samples": samples})
        plot_gan_losses(read_metrics(log.path), plot_path(out))

    relaxation = {"beta": 1.0}  # --critic-input gumbel: the inverse temperature of the last step

    def anneal_progress(step: int) -> float:
        """How far the Gumbel-softmax's annealing is at `step`: adversarial steps so far over
        --gumbel-anneal-steps."""
        start = adversarial_from if adversarial_from is not None else tc.mle_iters
        return (step - start) / tc.gumbel_anneal_steps

    stop = StopFlag()
    throughput = Throughput()
    start_step = state["step"]
    end_step = run_end(start_step, step_cap(spec, tc.max_iters))
    gan.train()
    display_cm = (display_factory(tc.max_iters, start_step) if ctx.is_main
                  else GANDisplay(tc.max_iters, start_step, console=Console(quiet=True)))
    generator_params = list(gan.generator.parameters())
    critic_params = list(gan.discriminator.parameters())
    # Under a budget the MLE warm-up takes the recipe's share of the steps left as its share of
    # the time, the adversarial phase the rest.
    mle_share = (tc.mle_iters - start_step) / max(tc.max_iters - start_step, 1)
    adversarial_from: int | None = tc.mle_iters if start_step >= tc.mle_iters else None
    budget = budget_for(spec, start_step, tc.max_iters, ctx=ctx, device=device)
    with display_cm as display, stop.installed():
        while (state["step"] < end_step and not any_rank(stop.requested, ctx, device)
               and (budget is None or budget.running())):
            step = state["step"]
            if budget is None:
                phase = "mle" if step < tc.mle_iters else "adversarial"
            else:
                phase = "mle" if adversarial_from is None and budget.fraction < mle_share else "adversarial"
                if phase == "adversarial" and adversarial_from is None:
                    adversarial_from = step
            t0 = time.perf_counter()
            stats: dict[str, float] = {"d_loss": math.nan, "wasserstein": math.nan, "gp": math.nan}
            sentences = tc.batch_size
            if phase == "mle":
                _set_lr(opt_g, tc.mle_learning_rate)
                loss = mle_loss(generator, real_batch(), noise(tc.batch_size))
                opt_g.zero_grad(set_to_none=True)
                loss.backward()
                average_gradients(generator_params, ctx)
                if tc.grad_clip > 0:
                    torch.nn.utils.clip_grad_norm_(gan.generator.parameters(), tc.grad_clip)
                opt_g.step()
                g_loss = mean_over_ranks(float(loss.detach()), ctx, device)
            else:
                _set_lr(opt_g, tc.learning_rate)
                beta = relaxation["beta"] = gumbel_beta(tc.gumbel_max_beta, anneal_progress(step))
                critic.requires_grad_(True)
                for _ in range(tc.critic_steps):
                    real = real_batch()
                    with torch.no_grad():
                        fake_ids, probs = generate_fake(generator, noise(tc.batch_size))
                    d_loss, stats = critic_loss(critic, real,
                                                fake_rows(fake_ids, probs, config.critic_input, beta),
                                                tc.gp_weight, penalty_critic=gan.discriminator)
                    opt_d.zero_grad(set_to_none=True)
                    d_loss.backward()
                    average_gradients(critic_params, ctx)
                    opt_d.step()
                stats = {k: mean_over_ranks(v, ctx, device) for k, v in stats.items()}
                critic.requires_grad_(False)  # the generator step needs no critic gradients
                fake_ids, probs = generate_fake(generator, noise(tc.batch_size))
                loss = generator_loss(critic, fake_rows(fake_ids, probs, config.critic_input, beta))
                g_loss = mean_over_ranks(float(loss.detach()), ctx, device)
                if tc.mle_weight > 0:
                    loss = loss + tc.mle_weight * mle_loss(generator, real_batch(), noise(tc.batch_size))
                opt_g.zero_grad(set_to_none=True)
                loss.backward()
                average_gradients(generator_params, ctx)
                opt_g.step()
                critic.requires_grad_(True)
                sentences = tc.batch_size * (tc.critic_steps + 1)
            dt = time.perf_counter() - t0
            advice = "Lower --learning-rate / --d-learning-rate"
            check_finite(g_loss, step + 1, advice, "the generator's loss")
            if phase != "mle":
                check_finite(stats["d_loss"], step + 1, advice, "the critic's loss")
            state["step"] = done = step + 1
            state["sentences_seen"] += sentences * ctx.world_size
            state["train_seconds"] += dt
            throughput.update(sentences, dt)
            speed = throughput.speed
            display.step(done, phase, stats["d_loss"], g_loss, stats["wasserstein"], speed)
            if budget is None:
                due = due_after(done, end_step, tc)
            else:
                due = budget.stepped(done, end_step, tc.log_interval)
                display.plan(budget.projected_end(done))
            if due.log:
                log.append({"event": "train", "step": done, "phase": phase, "g_loss": g_loss, **stats,
                            "sentences_per_s": speed})
            if due.evaluate:
                evaluate(done, phase)
            if due.save:
                save()
        interrupted = save_if_interrupted(stop, state, end_step, ctx, device, save, display, out,
                                          family="gan")
    log.close()
    return GANRunResult(step=state["step"], val_nll=state["val_nll"], wasserstein=state["wasserstein"],
                        sentences_per_s=speed, train_seconds=state["train_seconds"],
                        interrupted=interrupted, is_main=ctx.is_main)
