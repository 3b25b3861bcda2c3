"""Every CLI prints a TextgenError through one filter (runtime/terminal_text.py print_error): a
message built from a file name or file contents cannot drive the terminal and stays one line."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from export.cli import main as export_main
from runtime.chat import main as chat_main
from runtime.terminal_text import error_line
from textgen_core.evaluate import main as evaluate_main
from textgen_core.sample import main as sample_main
from textgen_core.train import main as train_main

HOSTILE = "\x1b]0;owned\x07\x1b[2J\nsecond line\u202e.pt"


def test_error_line_filters_and_joins() -> None:
    assert error_line(HOSTILE) == "\ufffd]0;owned\ufffd\ufffd[2J second line\ufffd.pt"
    assert error_line("lone \ud800") == "lone \ufffd"


@pytest.mark.parametrize("entry", ["sample", "export", "evaluate", "train --resume", "chat"])
def test_every_cli_filters_its_error_line(entry: str, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    missing = str(tmp_path / HOSTILE)
    calls: dict[str, Callable[[], int]] = {
        "sample": lambda: sample_main([missing, "--prompt", "To"]),
        "export": lambda: export_main(["onnx", missing]),
        "evaluate": lambda: evaluate_main([missing, "--corpus", missing]),
        "train --resume": lambda: train_main(["--resume", "--out", missing]),
        "chat": lambda: chat_main(["--model", missing, "--prompt", "To"]),
    }
    assert calls[entry]() == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert "\x1b" not in err and "\x07" not in err and "\u202e" not in err
    assert "Traceback" not in err
