"""Every bad input of `python -m textgen_core.train` gives one line, exit 1, and loses nothing."""

import subprocess
import sys
from pathlib import Path

import pytest

from textgen_core.train import main
from textgen_core.training.checkpoint import make_checkpoint, save_checkpoint

NANO = ["--preset", "nano", "--device", "cpu", "--sample-tokens", "0"]


def run_error(capsys: pytest.CaptureFixture[str], args: list[str]) -> str:
    assert main(args) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err
    return err


def test_missing_corpus(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = run_error(capsys, ["--corpus", str(tmp_path / "none.txt"), "--out", str(tmp_path / "m.pt"), *NANO])
    assert "corpus not found" in err
    assert not (tmp_path / "m.pt").exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"", "is empty"), (b"\x7fELF\x02\x01\x01\x00\x00\x00", "binary"), (b"na\xefve caf\xe9", "not valid utf-8")],
)
def test_bad_corpus_files(tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes, message: str) -> None:
    corpus = tmp_path / "c.txt"
    corpus.write_bytes(content)
    err = run_error(capsys, ["--corpus", str(corpus), "--out", str(tmp_path / "m.pt"), *NANO])
    assert message in err


def test_corpus_smaller_than_context(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    corpus = tmp_path / "c.txt"
    corpus.write_text("short text")
    err = run_error(capsys, ["--corpus", str(corpus), "--out", str(tmp_path / "m.pt"), *NANO])
    assert "fewer than --block-size" in err


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--n-layer", "0"], "--n-layer must be a positive integer"),
        (["--max-iters", "-5"], "--max-iters must be a positive integer"),
        (["--batch-size", "0"], "--batch-size must be a positive integer"),
        (["--n-embd", "30", "--n-head", "4"], "must be divisible"),
        (["--warmup-iters", "500", "--max-iters", "200"], "must be smaller than --max-iters"),
        (["--preset", "huge"], "unknown --preset 'huge'"),
    ],
)
def test_impossible_flags(tiny_corpus_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                          flags: list[str], message: str) -> None:
    err = run_error(capsys, ["--corpus", str(tiny_corpus_file), "--out", str(tmp_path / "m.pt"), *NANO, *flags])
    assert message in err


def test_resume_without_checkpoint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = run_error(capsys, ["--resume", "--out", str(tmp_path / "missing.pt")])
    assert "no checkpoint at" in err


def test_existing_checkpoint_is_not_overwritten(tiny_gpt_checkpoint: Path, tiny_corpus_file: Path,
                                                tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "gpt.pt"
    out.write_bytes(tiny_gpt_checkpoint.read_bytes())
    err = run_error(capsys, ["--corpus", str(tiny_corpus_file), "--out", str(out), *NANO])
    assert "already exists" in err and "--resume" in err
    assert out.read_bytes() == tiny_gpt_checkpoint.read_bytes()


def test_corrupt_and_foreign_checkpoints(tiny_gpt_checkpoint: Path, tiny_corpus_file: Path,
                                         tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    truncated = tmp_path / "cut.pt"
    truncated.write_bytes(tiny_gpt_checkpoint.read_bytes()[:3000])
    err = run_error(capsys, ["--resume", "--out", str(truncated)])
    assert "corrupt, truncated or unsafe" in err
    assert truncated.stat().st_size == 3000

    gan = tmp_path / "gan.pt"
    save_checkpoint(make_checkpoint(kind="gan", model_config={}, tokenizer={}, model_state={}), gan)
    err = run_error(capsys, ["--init-from", str(gan), "--corpus", str(tiny_corpus_file),
                             "--out", str(tmp_path / "new.pt"), *NANO])
    assert "holds a 'gan' model" in err


def test_weights_only_checkpoint_cannot_resume(tiny_gpt_checkpoint: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "gpt.pt"
    out.write_bytes(tiny_gpt_checkpoint.read_bytes())
    err = run_error(capsys, ["--resume", "--out", str(out)])
    assert "--init-from" in err


def test_fine_tune_on_text_with_unknown_characters(tiny_gpt_checkpoint: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    corpus = tmp_path / "new.txt"
    corpus.write_text("Zebras quietly vexed jumpy wizards. " * 50)
    err = run_error(capsys, ["--init-from", str(tiny_gpt_checkpoint), "--corpus", str(corpus),
                             "--out", str(tmp_path / "new.pt"), *NANO])
    assert "does not know" in err and "'Z'" in err


def test_bad_config_file(tiny_corpus_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "run.toml"
    config.write_text("[model]\nn_layers = 3\n")
    err = run_error(capsys, ["--config", str(config), "--corpus", str(tiny_corpus_file),
                             "--out", str(tmp_path / "m.pt"), *NANO])
    assert "unknown model setting 'n_layers'" in err


def test_config_file_is_applied(tiny_corpus_file: Path, tmp_path: Path) -> None:
    config = tmp_path / "run.toml"
    config.write_text('preset = "nano"\n[model]\nn_layer = 1\n[train]\nmax_iters = 4\nsample_tokens = 0\n')
    out = tmp_path / "m.pt"
    assert main(["--config", str(config), "--corpus", str(tiny_corpus_file), "--out", str(out),
                 "--device", "cpu"]) == 0
    from textgen_core.training.checkpoint import load_checkpoint

    payload = load_checkpoint(out)
    assert payload["model_config"]["n_layer"] == 1 and payload["train_state"]["step"] == 4


def test_module_entry_point_reports_errors_without_traceback(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "textgen_core.train", "--corpus", str(tmp_path / "nope"), "--out",
         str(tmp_path / "m.pt")], capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 1
    assert result.stderr.startswith("error: corpus not found") and "Traceback" not in result.stderr
