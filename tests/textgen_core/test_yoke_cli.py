"""`--yoke` on the training command line: bad values are one-line errors; a good one trains."""

from pathlib import Path

import pytest

from textgen_core.evaluate import main as evaluate_main
from textgen_core.train import main
from textgen_core.training.checkpoint import load_checkpoint

NANO = ["--preset", "nano", "--device", "cpu", "--sample-tokens", "0"]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("2:16", "--yoke layer 2 is out of range: --n-layer 2 has layers 0..1"),
        ("1:0", "--yoke hidden size must be a positive integer, got 0"),
        ("1:-4", "--yoke hidden size must be a positive integer, got -4"),
        ("16", "--yoke must be LAYER:HIDDEN[:no-residual][:stateful], got '16'"),
        ("a:16", "--yoke must be LAYER:HIDDEN[:no-residual][:stateful] with whole numbers"),
        ("1:16:residual", "--yoke option 'residual' is unknown; options: no-residual, stateful"),
    ],
)
def test_bad_yoke_values(tiny_corpus_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                         value: str, message: str) -> None:
    out = tmp_path / "m.pt"
    assert main(["--corpus", str(tiny_corpus_file), "--out", str(out), "--yoke", value, *NANO]) == 1
    err = capsys.readouterr().err.strip()
    assert err == f"error: {message}" or (err.startswith(f"error: {message}") and "\n" not in err)
    assert not out.exists()


def test_stateful_yoke_on_a_corpus_too_short_for_its_streams(
        tiny_corpus_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "m.pt"
    assert main(["--corpus", str(tiny_corpus_file), "--out", str(out), "--yoke", "1:8:stateful",
                 "--yoke-windows", "300", *NANO]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: the train split has") and "fewer than --yoke-windows x" in err
    assert not out.exists()


def test_yoke_trains_evaluates_and_keeps_its_shape_on_resume(
        tiny_corpus_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "m.pt"
    assert main(["--corpus", str(tiny_corpus_file), "--out", str(out), "--yoke", "1:8:stateful",
                 "--yoke-windows", "2", "--max-iters", "4", *NANO]) == 0
    assert load_checkpoint(out)["model_config"]["yoke"] == "1:8:stateful"
    assert evaluate_main([str(out), "--corpus", str(tiny_corpus_file), "--device", "cpu"]) == 0
    assert "loss" in capsys.readouterr().out
    assert main(["--resume", "--out", str(out), "--yoke", "0:8", "--max-iters", "6", *NANO[2:]]) == 1
    assert "--resume keeps the saved model shape; drop --yoke" in capsys.readouterr().err
