"""`python -m export onnx|torchscript` on a stack checkpoint: files written, parity reported,
the documented one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from export import cli
from export.stack import stack_onnx_parity
from runtime.tokenizer import CharTokenizer
from textgen_core.models.stack.model import Stack
from textgen_core.models.stack.spec import StackConfig
from textgen_core.training.checkpoint import make_checkpoint, save_checkpoint

# A windowed stack with an LSTM inside: the graph with a fixed, right-padded window and state.
LAYERS = [{"type": "Embedding"}, {"type": "PositionalEmbedding"}, {"type": "Block"},
          {"type": "LSTM"}, {"type": "Dropout", "p": 0.1}, {"type": "TemporalDense"},
          {"type": "CrossEntropyLoss"}]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def checkpoint(tmp_path: Path) -> tuple[Path, Stack]:
    torch.manual_seed(0)
    tokenizer = CharTokenizer(list("abcdefg"))
    model = Stack(StackConfig(vocab_size=7, block_size=6, n_embd=8, n_head=2, layers=LAYERS))
    path = tmp_path / "mixed.pt"
    save_checkpoint(make_checkpoint(kind="stack", model_config=model.config.to_dict(),
                                    tokenizer=tokenizer.to_dict(), model_state=model.state_dict()), path)
    return path, model.eval()


def test_export_writes_onnx_and_torchscript_with_parity(checkpoint: tuple[Path, Stack],
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    path, model = checkpoint
    assert cli.main(["onnx", str(path)]) == 0
    assert cli.main(["torchscript", str(path)]) == 0
    out = capsys.readouterr().out
    assert "sequence fixed at 6" in out and out.count("max |Δlogits| vs torch") == 2
    assert path.with_suffix(".onnx").exists() and path.with_suffix(".ts").exists()
    assert stack_onnx_parity(model, path.with_suffix(".onnx")).worst < 1e-4


def test_quantize_is_refused_for_stacks(checkpoint: tuple[Path, Stack],
                                        capsys: pytest.CaptureFixture[str]) -> None:
    path, _ = checkpoint
    assert cli.main(["onnx", str(path), "--quantize", "int8"]) == 1
    err = capsys.readouterr().err
    assert "--quantize is available for GPT exports only" in err and "Traceback" not in err
    assert not path.with_suffix(".onnx").exists()
