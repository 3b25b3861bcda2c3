"""A seed outside [0, 2**32) is one line of error wherever a user types it (issue 16, item 10):
`--seed` of sample and chat (GPT and GAN), `/seed` inside the chat."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from runtime.errors import SamplingError
from runtime.sampler import SEED_LIMIT, validate_seed

REPO = Path(__file__).resolve().parents[2]
MESSAGE = "must be an integer from 0 to 4294967295"


def run(*argv: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *argv], input=stdin, capture_output=True, text=True,
                          cwd=REPO, timeout=300)


@pytest.mark.parametrize("seed", [None, 0, 1, SEED_LIMIT - 1])
def test_seeds_in_range_pass(seed: int | None) -> None:
    assert validate_seed(seed) == seed


@pytest.mark.parametrize("seed", [-1, SEED_LIMIT, 10**30, True])
def test_seeds_out_of_range_are_refused(seed: int) -> None:
    with pytest.raises(SamplingError, match=MESSAGE):
        validate_seed(seed, "/seed")


def _one_line_error(result: subprocess.CompletedProcess) -> None:
    err = result.stderr.strip()
    assert result.returncode == 1, err
    assert "Traceback" not in err and len(err.splitlines()) == 1 and MESSAGE in err, err


def test_sample_seed(tiny_gpt_checkpoint: Path) -> None:
    _one_line_error(run("textgen_core.sample", str(tiny_gpt_checkpoint), "--seed", "-1"))


@pytest.mark.parametrize("extra", [["--prompt", "To"], ["--num-samples", "1"]], ids=["gpt", "gan"])
def test_chat_seed(extra: list[str], tmp_path: Path) -> None:
    # The seed is checked before the model is opened, so no model is needed to see the error.
    _one_line_error(run("runtime.chat", "--model", str(tmp_path / "none.onnx"), "--seed", "-1", *extra))


def test_seed_command_in_the_chat(exported_tiny: dict[str, Path]) -> None:
    result = run("runtime.chat", "--model", str(exported_tiny["onnx"]), "--max-new-tokens", "4",
                 stdin="/seed -1\n/seed 4294967296\n/seed 7\nTo\n/quit\n")
    assert result.returncode == 0, result.stderr
    out = result.stdout + result.stderr
    assert "Traceback" not in out
    assert out.count(MESSAGE) == 2 and "seed set to 7" in out
