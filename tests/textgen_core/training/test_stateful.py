"""Truncated BPTT for the stateful yoke: state carried and detached, loss goes down, exact resume."""

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from textgen_core.data.streams import StreamSampler
from textgen_core.models.gpt import GPT, GPTConfig
from textgen_core.train import main as train_main
from textgen_core.training.checkpoint import load_checkpoint
from textgen_core.training.config import TrainConfig
from textgen_core.training.device import autocast
from textgen_core.training.evaluation import corpus_loss
from textgen_core.training.gpt import RunSpec, train_gpt
from textgen_core.training.metrics_log import metrics_path, read_metrics
from textgen_core.training.progress import TrainingDisplay
from textgen_core.training.stateful import StatefulBatches, StatefulForward, next_state, stream_corpus_loss

MODEL = GPTConfig(block_size=16, n_layer=2, n_head=2, n_embd=24, yoke="1:8:stateful")
CPU = torch.device("cpu")


def tiny_model() -> GPT:
    torch.manual_seed(0)
    return GPT(GPTConfig(**{**MODEL.to_dict(), "vocab_size": 30}))


def tiny_train_config(**changes: object) -> TrainConfig:
    base = dict(batch_size=8, max_iters=12, learning_rate=3e-3, min_lr=3e-4, warmup_iters=2,
                eval_interval=6, eval_iters=2, checkpoint_interval=6, log_interval=1,
                sample_tokens=0, yoke_windows=4)
    return TrainConfig(**{**base, **changes})


def test_state_is_carried_but_no_gradient_crosses_windows() -> None:
    model = tiny_model()
    forward = StatefulForward(model)
    tokens = np.random.default_rng(0).integers(0, 30, 400).astype(np.uint16)
    batches = StatefulBatches(StreamSampler(tokens, 16, 4, 3, torch.Generator().manual_seed(1), CPU), 8)
    batches.loss(forward, CPU)
    carried = batches.state.clone()
    assert carried.abs().sum() > 0 and not carried.requires_grad
    loss = batches.loss(forward, CPU)
    grads = torch.autograd.grad(loss, list(model.parameters()), allow_unused=True)

    # The same second window, its state given as a constant: identical gradients, so nothing
    # flowed back into the first window.
    replay = StreamSampler(tokens, 16, 4, 3, torch.Generator().manual_seed(1), CPU)
    replay.next()
    x, y, restarted = replay.next()
    assert not restarted
    with autocast(CPU, training=True):  # as the training step computes it
        _, expected_loss, _ = forward(x, carried, y)
    expected = torch.autograd.grad(expected_loss, list(model.parameters()), allow_unused=True)
    assert torch.equal(loss, expected_loss)
    for got, want in zip(grads, expected, strict=True):
        assert (got is None and want is None) or torch.equal(got, want)
    assert grads[[n for n, _ in model.named_parameters()].index("blocks.1.mlp.c_state.weight")] is not None


def test_stream_loss_reads_the_same_windows_as_the_plain_loss() -> None:
    model = tiny_model().eval()
    tokens = np.random.default_rng(0).integers(0, 30, 16 * 11 + 1).astype(np.uint16)
    with torch.no_grad():
        model.blocks[1].mlp.c_state.weight.zero_()  # a state that adds nothing
    plain = corpus_loss(model, tokens, block_size=16, batch_size=3, device=CPU)
    streamed = stream_corpus_loss(model, tokens, block_size=16, batch_size=3, device=CPU)
    assert streamed[1] == plain[1] == 16 * 11 and streamed[0] == pytest.approx(plain[0], abs=1e-6)
    with torch.no_grad():
        model.blocks[1].mlp.c_state.weight.normal_(std=1.0)
    assert stream_corpus_loss(model, tokens, block_size=16, batch_size=3, device=CPU)[0] != pytest.approx(plain[0])


def test_stateful_training_lowers_the_loss(tiny_corpus_file: Path, tmp_path: Path) -> None:
    spec = RunSpec(MODEL, tiny_train_config(max_iters=30, eval_interval=15, checkpoint_interval=30),
                   corpus=str(tiny_corpus_file), out=tmp_path / "m.pt", device="cpu")
    result = train_gpt(spec)
    first, last = sum(result.losses[:4]) / 4, sum(result.losses[-4:]) / 4
    assert last < first - 0.3, (first, last)
    evals = [r for r in read_metrics(metrics_path(spec.out)) if r["event"] == "eval"]
    assert evals[-1]["val_loss"] < evals[0]["val_loss"]
    saved = load_checkpoint(spec.out)
    assert saved["model_config"]["yoke"] == "1:8:stateful"
    assert saved["train_state"]["yoke_stream"]["state"].shape == (8, 8)


def test_resume_mid_stream_gives_bit_identical_losses(tiny_corpus_file: Path, tmp_path: Path) -> None:
    # Step 4 of streams 3 windows long is mid-stream: resume must restore the carried state.
    whole, copy = tmp_path / "whole" / "gpt.pt", tmp_path / "resumed" / "gpt.pt"
    copy.parent.mkdir()

    def display(total: int, start: int) -> TrainingDisplay:
        class CopyAtSix(TrainingDisplay):
            def step(self, step: int, loss: float, tokens_per_s: float, mfu: float | None) -> None:
                if step == 5:
                    shutil.copy(whole, copy)
                super().step(step, loss, tokens_per_s, mfu)

        return CopyAtSix(total, start)

    config = tiny_train_config(max_iters=8, eval_interval=8, checkpoint_interval=4, yoke_windows=3)
    spec = RunSpec(MODEL, config, corpus=str(tiny_corpus_file), out=whole, device="cpu")
    uninterrupted = train_gpt(spec, display_factory=display).losses
    assert load_checkpoint(copy)["train_state"]["yoke_stream"]["drawn"] == 4
    assert train_main(["--resume", "--out", str(copy), "--device", "cpu"]) == 0
    resumed = [r["loss"] for r in read_metrics(metrics_path(copy)) if r["event"] == "train"]
    assert resumed == uninterrupted[4:]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_the_carried_state_is_a_float32_copy_in_either_compute_dtype(dtype: torch.dtype) -> None:
    """In fp32 `.float()` is a no-op, so the state was a strided view of the window's
    activations and the checkpoint that saved it failed its own load check."""
    hidden = torch.randn(4, 6, 8).to(dtype)
    state = next_state(hidden)
    assert state.dtype == torch.float32 and state.is_contiguous()
    assert state.untyped_storage().data_ptr() != hidden.untyped_storage().data_ptr()
