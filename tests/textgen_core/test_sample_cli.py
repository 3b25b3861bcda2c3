from pathlib import Path

import pytest

from textgen_core.sample import main


def test_sample_streams_the_prompt_and_continuation(tiny_gpt_checkpoint: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(tiny_gpt_checkpoint), "--prompt", "To be", "--max-new-tokens", "40", "--seed", "1",
                 "--echo"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("To be") and len(out) == len("To be") + 40 + 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--prompt", "To be\x00"], "does not know"),
        (["--temperature", "-2"], "--temperature must be"),
        (["--max-new-tokens", "0"], "--max-new-tokens must be a positive integer"),
        (["--top-p", "0"], "--top-p must be in"),
    ],
)
def test_bad_input(tiny_gpt_checkpoint: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str) -> None:
    assert main([str(tiny_gpt_checkpoint), *args]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and "\n" not in err


def test_missing_checkpoint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(tmp_path / "none.pt")]) == 1
    assert "checkpoint not found" in capsys.readouterr().err
