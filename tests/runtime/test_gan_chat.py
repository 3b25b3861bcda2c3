"""`python -m runtime.chat --model gan.onnx`: sentences from noise, seeded, and its bad input."""

import subprocess
import sys
from pathlib import Path

import pytest

from runtime.chat import main

REPO = Path(__file__).resolve().parents[2]


def test_num_samples_prints_that_many_seeded_sentences(exported_tiny_gan: dict[str, Path],
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    model = str(exported_tiny_gan["onnx"])
    assert main(["--model", model, "--num-samples", "5", "--seed", "2"]) == 0
    first = capsys.readouterr().out
    assert main(["--model", model, "--num-samples", "5", "--seed", "2"]) == 0
    assert capsys.readouterr().out == first
    assert len(first.splitlines()) == 5


def test_interactive_enter_writes_a_sentence(exported_tiny_gan: dict[str, Path]) -> None:
    result = subprocess.run([sys.executable, "-m", "runtime.chat", "--model", str(exported_tiny_gan["onnx"]),
                             "--seed", "1"], input="\n\nhello\n/quit\n", cwd=REPO, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "press Enter for a new sentence" in result.stdout
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(("extra", "message"), [
    (["--prompt", "the king"], "a GAN writes sentences from noise and takes no --prompt"),
    (["--num-samples", "0"], "--num-samples must be a positive integer, got 0"),
])
def test_bad_input(exported_tiny_gan: dict[str, Path], capsys: pytest.CaptureFixture[str],
                   extra: list[str], message: str) -> None:
    assert main(["--model", str(exported_tiny_gan["onnx"]), *extra]) == 1
    assert message in " ".join(capsys.readouterr().err.split())


def test_gpt_file_where_a_gan_is_needed(exported_tiny: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--model", str(exported_tiny["onnx"]), "--num-samples", "3"]) == 1
    assert "holds a 'gpt' model" in capsys.readouterr().err
