"""Named model + training presets (and, where one says, a fresh run's tokenizer), per family.
The GPT's `cpu` is its default without a GPU, `baby` with one; the GAN and the stack have no
default preset (the GAN's defaults are its measured recipe, a stack's recipe is its layers file)
and share `nano`, seconds anywhere."""

from __future__ import annotations

from typing import Any

from textgen_core.errors import ConfigError

PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    # A few minutes on 2 CPU cores, val loss ~1.54 on shakespeare (README, Quick start).
    "cpu": {
        "model": dict(n_layer=4, n_head=4, n_embd=128, block_size=128, dropout=0.0),
        "train": dict(
            batch_size=32, max_iters=2000, learning_rate=2e-3, min_lr=2e-4, warmup_iters=100,
            eval_interval=250, eval_iters=20, checkpoint_interval=250, weight_decay=0.1,
        ),
    },
    # The best text per CPU-minute measured on 2 cores (issue 30; README, "The best text per
    # CPU-minute"): the cpu shape and schedule over a bpe vocabulary of 2,048 (a step reads 2.7x
    # more text than char's), with Muon on the hidden matrices; 1.94 bits/char after
    # `--time-budget 10`, where the same with AdamW gives 2.00 and char 2.2.
    "cpu-bpe": {
        "model": dict(n_layer=4, n_head=4, n_embd=128, block_size=128, dropout=0.0),
        "train": dict(
            batch_size=32, max_iters=2000, learning_rate=2e-3, min_lr=2e-4, warmup_iters=100,
            eval_interval=250, eval_iters=20, checkpoint_interval=250, weight_decay=0.1,
            optimizer="muon", muon_lr=0.02,
        ),
        "tokenizer": dict(tokenizer="bpe", vocab_size=2048),
    },
    # nanoGPT's shakespeare-char "baby GPT" shape and recipe, the GPU default.
    "baby": {
        "model": dict(n_layer=6, n_head=6, n_embd=384, block_size=256, dropout=0.2),
        "train": dict(
            batch_size=64, max_iters=5000, learning_rate=1e-3, min_lr=1e-4, warmup_iters=100,
            eval_interval=250, eval_iters=200, checkpoint_interval=500, beta2=0.99,
            weight_decay=0.1,
        ),
    },
    # The GPU recipe for time-to-quality (issue 7): the baby shape without dropout (the 5 MB
    # corpus does not overfit it before val loss 1.30), Muon on the hidden matrices, a short
    # warmup, few cheap evaluations. NOT YET MEASURED on a GPU: `python -m benchmarks` runs
    # benchmarks/gpu_time_to_loss.py when CUDA is present and reports its time to val loss 1.30.
    "fast": {
        "model": dict(n_layer=6, n_head=6, n_embd=384, block_size=256, dropout=0.0),
        "train": dict(
            batch_size=64, max_iters=2000, learning_rate=2e-3, min_lr=2e-4, warmup_iters=50,
            eval_interval=100, eval_iters=20, checkpoint_interval=2000, beta2=0.95,
            weight_decay=0.0, optimizer="muon", muon_lr=0.02, sample_tokens=0,
        ),
    },
    # Seconds anywhere: smoke tests and demos.
    "nano": {
        "model": dict(n_layer=2, n_head=2, n_embd=32, block_size=32, dropout=0.0),
        "train": dict(
            batch_size=8, max_iters=100, learning_rate=3e-3, min_lr=3e-4, warmup_iters=10,
            eval_interval=50, eval_iters=5, checkpoint_interval=50, sample_tokens=60,
        ),
    },
}


GAN_PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "nano": {
        "model": dict(seq_len=8, vocab_size=200, n_embd=16, n_head=2, ffn_hidden=32, n_mapping=1,
                      n_noise_blocks=1, n_output_blocks=0, critic_layers=1),
        "train": dict(batch_size=8, max_iters=40, mle_iters=30, critic_steps=1, eval_interval=20,
                      checkpoint_interval=20, log_interval=5),
    },
}

STACK_PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "nano": {
        "model": dict(block_size=32, n_embd=32, n_head=2, dropout=0.0),
        "train": dict(batch_size=8, max_iters=100, learning_rate=3e-3, warmup_iters=10,
                      eval_interval=50, eval_iters=5, checkpoint_interval=50, sample_tokens=60),
    },
}

FAMILY_PRESETS = {"gpt": PRESETS, "gan": GAN_PRESETS, "stack": STACK_PRESETS}


def default_preset(device_type: str) -> str:
    return "cpu" if device_type == "cpu" else "baby"


def get_preset(name: str, family: str = "gpt") -> dict[str, dict[str, Any]]:
    presets = FAMILY_PRESETS[family]
    if name not in presets:
        which = "" if family == "gpt" else f" for --model {family}"
        raise ConfigError(f"unknown --preset {name!r}{which}; choose from: {', '.join(presets)}")
    return presets[name]
