"""The paths the README's quick start and its resume advice take (issue 14): no arguments, a step
limit, a resume with a smaller --max-iters than the saved warmup, evaluate on the recorded corpus,
and the summary line of a run saved before its first evaluation."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from textgen_core.evaluate import main as evaluate_main
from textgen_core.train import build_parser, build_request
from textgen_core.train import main as train_main
from textgen_core.training.cli_outcome import RunResult, print_summary
from textgen_core.training.config import lr_at
from textgen_core.training.gpt_run import build_spec

pytestmark = pytest.mark.usefixtures("one_torch_thread")

NANO = ["--preset", "nano", "--device", "cpu", "--sample-tokens", "0"]


@pytest.mark.parametrize("argv", [[], ["--corpus", "x.txt"], ["--model", "gpt"]])
def test_no_or_few_arguments_select_the_gpt(argv: list[str]) -> None:
    assert build_request(build_parser().parse_args(argv))[0] == "gpt"


def test_no_arguments_plan_the_default_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`python -m textgen_core.train` with nothing else: the cpu preset on shakespeare, models/gpt.pt."""
    monkeypatch.chdir(tmp_path)
    spec = build_spec(build_request(build_parser().parse_args([]))[1])
    assert spec.corpus == "shakespeare" and spec.out == Path("models/gpt.pt")
    assert spec.train_config.max_iters == 2000 and spec.model_config.n_embd == 128


def _saved(path: Path) -> dict:
    return torch.load(path, weights_only=True)


def test_step_limit_ends_like_a_finished_run_and_resume_goes_on(
        tiny_corpus_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "m.pt"
    monkeypatch.setenv("TEXTGEN_STEP_LIMIT", "4")
    args = ["--corpus", str(tiny_corpus_file), "--out", str(out), "--max-iters", "50", *NANO]
    assert train_main(args) == 0
    saved = _saved(out)
    assert saved["train_state"]["step"] == 4
    assert saved["train_config"]["max_iters"] == 50  # the run's settings are untouched
    assert math.isfinite(saved["train_state"]["val_loss"])  # evaluated at its end
    assert "step 4, val loss" in capsys.readouterr().out
    assert train_main(["--resume", "--out", str(out), "--device", "cpu"]) == 0
    assert _saved(out)["train_state"]["step"] == 8


def test_bad_step_limit_is_one_line(tiny_corpus_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("TEXTGEN_STEP_LIMIT", "-2")
    assert train_main(["--corpus", str(tiny_corpus_file), "--out", str(tmp_path / "m.pt"), *NANO]) == 1
    err = capsys.readouterr().err.strip()
    assert err == "error: TEXTGEN_STEP_LIMIT must be a positive integer, got '-2'"


def test_resume_with_fewer_iters_than_the_saved_warmup_keeps_the_schedule(
        tiny_corpus_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's advice: a run stopped at step 5 of 100 (warmup 10) resumes to 8."""
    out = tmp_path / "m.pt"
    monkeypatch.setenv("TEXTGEN_STEP_LIMIT", "5")
    assert train_main(["--corpus", str(tiny_corpus_file), "--out", str(out), "--max-iters", "100",
                       "--warmup-iters", "10", *NANO]) == 0
    monkeypatch.delenv("TEXTGEN_STEP_LIMIT")
    saved = _saved(out)
    spec = build_spec(build_request(build_parser().parse_args(
        ["--resume", "--out", str(out), "--max-iters", "8"]))[1])
    from textgen_core.training.config import TrainConfig

    original = TrainConfig(**saved["train_config"])
    assert [lr_at(s, spec.train_config) for s in range(5, 8)] == [lr_at(s, original) for s in range(5, 8)]
    assert train_main(["--resume", "--out", str(out), "--max-iters", "8", "--device", "cpu"]) == 0
    assert _saved(out)["train_state"]["step"] == 8


def test_evaluate_defaults_to_the_recorded_corpus(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """A model trained on another corpus is measured on it, not on shakespeare."""
    corpus = tmp_path / "odd.txt"
    corpus.write_text("zyx wvu tsr qpo " * 400, encoding="utf-8")  # characters shakespeare lacks too
    out = tmp_path / "m.pt"
    monkeypatch.setenv("TEXTGEN_STEP_LIMIT", "2")
    assert train_main(["--corpus", str(corpus), "--out", str(out), *NANO]) == 0
    capsys.readouterr()
    assert evaluate_main([str(out), "--device", "cpu"]) == 0
    line = capsys.readouterr().out
    assert line.startswith(f"{corpus} (val, ") and "bits/token" in line


def test_summary_before_the_first_evaluation(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    result = RunResult(step=3, val_loss=math.nan, best_val_loss=math.inf, tokens_per_s=10.0,
                       train_seconds=1.0, interrupted=True)
    assert print_summary(tmp_path / "m.pt", result) == 130
    line = capsys.readouterr().out
    assert "not evaluated yet" in line and "nan" not in line and "inf" not in line
