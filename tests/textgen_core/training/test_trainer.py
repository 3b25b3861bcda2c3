import json
import shutil
from pathlib import Path

import pytest

from textgen_core.models.gpt import GPTConfig
from textgen_core.train import main as train_main
from textgen_core.training.checkpoint import load_checkpoint
from textgen_core.training.config import TrainConfig
from textgen_core.training.gpt import RunSpec, train_gpt
from textgen_core.training.metrics_log import metrics_path, plot_path, read_metrics
from textgen_core.training.progress import TrainingDisplay

MODEL = GPTConfig(block_size=16, n_layer=2, n_head=2, n_embd=24)


def tiny_train_config(**changes: object) -> TrainConfig:
    base = dict(batch_size=8, max_iters=12, learning_rate=3e-3, min_lr=3e-4, warmup_iters=2,
                eval_interval=6, eval_iters=2, checkpoint_interval=6, log_interval=1,
                sample_tokens=0)
    return TrainConfig(**{**base, **changes})


@pytest.mark.parametrize("dtype", ["bf16", "fp32"], ids=["bf16-cpu", "fp32-cpu"])
def test_loss_goes_down(tiny_corpus_file: Path, tmp_path: Path, dtype: str) -> None:
    """Both CPU paths: bf16 steps (what `--dtype auto` measures faster on many CPUs with
    AVX512-BF16 or AMX) and fp32 ones; the choice is recorded in the checkpoint."""
    spec = RunSpec(MODEL, tiny_train_config(max_iters=60, eval_interval=30, checkpoint_interval=60,
                                            dtype=dtype),
                   corpus=str(tiny_corpus_file), out=tmp_path / "m.pt", device="cpu")
    result = train_gpt(spec)
    assert result.step == 60
    first, last = sum(result.losses[:5]) / 5, sum(result.losses[-5:]) / 5
    assert last < first - 0.5, (first, last)
    evals = [r for r in read_metrics(metrics_path(spec.out)) if r["event"] == "eval"]
    assert evals[-1]["val_loss"] < evals[0]["val_loss"]
    assert plot_path(spec.out).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    state = load_checkpoint(spec.out, kind="gpt")["train_state"]
    assert state["step"] == 60 and state["val_loss"] == pytest.approx(result.val_loss)
    assert state["compute_dtype"] == dtype
    start = next(r for r in read_metrics(metrics_path(spec.out)) if r["event"] == "start")
    assert start["amp"] == ("torch.bfloat16" if dtype == "bf16" else None)  # JSON null, not "None"


class _CopyAt:
    """A display that copies the checkpoint away once step `at` has been saved."""

    def __init__(self, out: Path, copy: Path, at: int):
        self.out, self.copy, self.at = out, copy, at

    def __call__(self, total: int, start: int) -> TrainingDisplay:
        outer = self

        class Display(TrainingDisplay):
            def step(self, step: int, loss: float, tokens_per_s: float, mfu: float | None) -> None:
                if step == outer.at + 1:
                    shutil.copy(outer.out, outer.copy)
                super().step(step, loss, tokens_per_s, mfu)

        return Display(total, start)


def test_resume_gives_bit_identical_losses(tiny_corpus_file: Path, tmp_path: Path) -> None:
    cfg = tiny_train_config(max_iters=12, checkpoint_interval=6)
    whole = tmp_path / "whole" / "gpt.pt"
    saved_at_6 = tmp_path / "resumed" / "gpt.pt"
    saved_at_6.parent.mkdir()
    spec = RunSpec(MODEL, cfg, corpus=str(tiny_corpus_file), out=whole, device="cpu")
    uninterrupted = train_gpt(spec, display_factory=_CopyAt(whole, saved_at_6, at=6)).losses
    assert load_checkpoint(saved_at_6)["train_state"]["step"] == 6

    assert train_main(["--resume", "--out", str(saved_at_6), "--device", "cpu"]) == 0
    resumed = [r["loss"] for r in read_metrics(metrics_path(saved_at_6)) if r["event"] == "train"]
    assert resumed == uninterrupted[6:]
    assert load_checkpoint(saved_at_6)["train_state"]["step"] == 12


def test_cli_run_then_fine_tune(tiny_corpus_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "base.pt"
    args = ["--corpus", str(tiny_corpus_file), "--out", str(out), "--preset", "nano",
            "--max-iters", "20", "--sample-tokens", "20", "--device", "cpu"]
    assert train_main(args) == 0
    printed = capsys.readouterr().out
    assert "step 20: train" in printed and f"saved {out}" in printed
    record = json.loads(metrics_path(out).read_text().splitlines()[0])
    assert record["event"] == "start" and record["model_config"]["n_layer"] == 2

    tuned = tmp_path / "tuned.pt"
    assert train_main(["--init-from", str(out), "--corpus", str(tiny_corpus_file), "--out",
                       str(tuned), "--max-iters", "5", "--sample-tokens", "0", "--preset", "nano"]) == 0
    payload = load_checkpoint(tuned)
    assert payload["train_state"]["step"] == 5
    assert payload["model_config"] == load_checkpoint(out)["model_config"]
