"""Stack training end to end on a tiny corpus: the loss falls, resume is exact, the CLI's
documented errors, fine-tuning ignores --layers, evaluate and sample read the checkpoint."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from textgen_core import evaluate, sample, train
from textgen_core.models.stack.spec import read_layers_file
from textgen_core.training.checkpoint import load_checkpoint
from textgen_core.training.stack import StackModelRequest, StackRunSpec, train_stack
from textgen_core.training.stack_config import Plateau, StackTrainConfig

LAYERS = """
[model]
block_size = 16
n_embd = 24
n_head = 2
dropout = 0.1
[[layers]]
type = "Embedding"
[[layers]]
type = "PositionalEmbedding"
[[layers]]
type = "Block"
[[layers]]
type = "LSTM"
[[layers]]
type = "TemporalDense"
[[layers]]
type = "CrossEntropyLoss"
"""
FAST = dict(batch_size=8, learning_rate=3e-3, warmup_iters=2, eval_iters=2, sample_tokens=8)


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """Tiny models gain nothing from intra-op threads, and on a shared 2-core machine thread
    hand-offs dominate each small op; restored afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def layers_file(tmp_path: Path) -> Path:
    path = tmp_path / "stack.toml"
    path.write_text(LAYERS, encoding="utf-8")
    return path


def _spec(layers_file: Path, corpus: Path, out: Path, **train: object) -> StackRunSpec:
    layers = read_layers_file(layers_file)
    return StackRunSpec(model_config=StackModelRequest(layers, layers.model),
                        train_config=StackTrainConfig(**{**FAST, **train}), corpus=str(corpus),
                        out=out, device="cpu")


def test_training_lowers_the_loss_and_saves_a_stack_checkpoint(
        layers_file: Path, tiny_corpus_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "s.pt"
    result = train_stack(_spec(layers_file, tiny_corpus_file, out, max_iters=40, eval_interval=40,
                               checkpoint_interval=40, learning_rate=1e-2))
    assert sum(result.losses[-5:]) / 5 < sum(result.losses[:5]) / 5 - 0.4
    payload = load_checkpoint(out, kind="stack")
    assert [s["type"] for s in payload["model_config"]["layers"]][-1] == "CrossEntropyLoss"
    assert payload["train_state"]["plateau"]["best"] == pytest.approx(result.val_loss)


def test_resume_continues_bit_for_bit(layers_file: Path, tiny_corpus_file: Path, tmp_path: Path) -> None:
    straight = train_stack(_spec(layers_file, tiny_corpus_file, tmp_path / "a.pt", max_iters=6,
                                 eval_interval=3, checkpoint_interval=3, patience=0))
    first = train_stack(_spec(layers_file, tiny_corpus_file, tmp_path / "b.pt", max_iters=3,
                              eval_interval=3, checkpoint_interval=3, patience=0))
    payload = load_checkpoint(tmp_path / "b.pt", kind="stack")
    spec = _spec(layers_file, tiny_corpus_file, tmp_path / "b.pt", max_iters=6, eval_interval=3,
                 checkpoint_interval=3, patience=0)
    spec.model_config, spec.resume_from = None, payload
    resumed = train_stack(spec)
    assert first.losses + resumed.losses == straight.losses
    final_a = load_checkpoint(tmp_path / "a.pt")["train_state"]["plateau"]
    assert load_checkpoint(tmp_path / "b.pt")["train_state"]["plateau"] == final_a


def test_plateau_lowers_the_rate_after_patience_evaluations() -> None:
    cfg = StackTrainConfig(patience=2, lr_factor=0.5, learning_rate=1.0, min_lr=0.3)
    plateau = Plateau(lr=1.0)
    changes = [plateau.update(v, cfg) for v in (3.0, 3.1, 3.0, 3.2, 2.0, 2.5, 2.5, 2.5, 2.5, 2.5, 2.5)]
    assert changes == [False, False, False, True, False, False, False, True, False, False, True]
    assert plateau.lr == 0.3 and plateau.reductions == 3


def test_cli_trains_then_fine_tunes_ignoring_layers_then_evaluates_and_samples(
        layers_file: Path, tiny_corpus_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, tuned = tmp_path / "cli.pt", tmp_path / "tuned.pt"
    common = ["--corpus", str(tiny_corpus_file), "--device", "cpu", "--batch-size", "4",
              "--eval-iters", "1", "--sample-tokens", "4"]  # warm-up shrinks to fit 3 steps
    assert train.main(["--model", "stack", "--layers", str(layers_file), "--out", str(out),
                       "--max-iters", "3", *common]) == 0
    assert train.main(["--model", "stack", "--init-from", str(out), "--layers", "ignored.toml",
                       "--out", str(tuned), "--max-iters", "2", "--learning-rate", "5e-5", *common]) == 0
    err = capsys.readouterr().err
    assert "--layers ignored.toml is ignored" in err
    assert load_checkpoint(tuned)["model_config"] == load_checkpoint(out)["model_config"]
    assert evaluate.main([str(tuned), "--corpus", str(tiny_corpus_file), "--device", "cpu"]) == 0
    assert "loss" in capsys.readouterr().out
    assert sample.main([str(tuned), "--prompt", "To be", "--max-new-tokens", "12", "--seed", "3",
                        "--device", "cpu", "--echo"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("To be") and len(text.rstrip("\n")) == len("To be") + 12


@pytest.mark.parametrize(("args", "message"), [
    ([], "--model stack needs --layers FILE.toml"),
    (["--layers", "nope.toml"], "--layers: no such file: nope.toml"),
    (["--resume"], "--resume: no checkpoint at"),
    (["--layers", "LAYERS", "--learning-rate", "0"], "--learning-rate must be > 0"),
    (["--layers", "LAYERS", "--n-head", "5"], "n_embd (24) must be divisible by n_head (5)"),
])
def test_cli_errors_are_one_line(args: list[str], message: str, layers_file: Path, tmp_path: Path,
                                 tiny_corpus_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = [str(layers_file) if a == "LAYERS" else a for a in args]
    code = train.main(["--model", "stack", "--corpus", str(tiny_corpus_file), "--out",
                       str(tmp_path / "x.pt"), "--max-iters", "2", "--warmup-iters", "0", *args])
    err = capsys.readouterr().err
    assert code == 1 and message in err and "Traceback" not in err


def test_a_stack_checkpoint_is_refused_where_a_gpt_is_needed(
        layers_file: Path, tiny_corpus_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "s.pt"
    train_stack(_spec(layers_file, tiny_corpus_file, out, max_iters=1, warmup_iters=0))
    assert train.main(["--resume", "--out", str(out), "--device", "cpu"]) == 1
    assert "holds a 'stack' model, but this command needs a 'gpt' model" in capsys.readouterr().err
    torch.manual_seed(0)
