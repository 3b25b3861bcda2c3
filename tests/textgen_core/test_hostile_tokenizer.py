"""A checkpoint whose tokenizer holds a lone surrogate (issue 16, item 11): sample and export
refuse it with one line instead of a UnicodeEncodeError traceback, and write nothing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from textgen_core.training.checkpoint import save_checkpoint


@pytest.fixture
def surrogate_checkpoint(tiny_gpt_checkpoint: Path, tmp_path: Path) -> Path:
    payload = torch.load(tiny_gpt_checkpoint, weights_only=True)
    chars = list(payload["tokenizer"]["chars"])
    chars[-1] = "\ud800"  # a lone surrogate: not encodable as UTF-8
    payload["tokenizer"] = {**payload["tokenizer"], "chars": chars}
    path = tmp_path / "bad.pt"
    save_checkpoint(payload, path)
    return path


@pytest.mark.parametrize("command", [
    ["textgen_core.sample", "{ckpt}", "--prompt", "To", "--max-new-tokens", "5", "--device", "cpu"],
    ["export", "onnx", "{ckpt}"],
    ["export", "torchscript", "{ckpt}"],
])
def test_lone_surrogate_in_a_checkpoint_tokenizer(surrogate_checkpoint: Path, command: list[str]) -> None:
    args = [a.replace("{ckpt}", str(surrogate_checkpoint)) for a in command]
    result = subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, timeout=300,
                            errors="replace")
    assert result.returncode == 1, result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in result.stderr
    assert "surrogate" in lines[0] or "not valid Unicode" in lines[0]
    assert sorted(p.name for p in surrogate_checkpoint.parent.iterdir()) == ["bad.pt"]
