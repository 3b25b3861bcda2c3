"""A checkpoint crafted to run code when unpickled is refused by every entry point, and the code
never runs."""

import pickle
from pathlib import Path

import pytest
import torch

from export.cli import main as export_main
from textgen_core.evaluate import main as evaluate_main
from textgen_core.sample import main as sample_main
from textgen_core.train import main as train_main


class _WritesAFile:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (self.marker, "code ran"))


@pytest.fixture
def evil_checkpoint(tmp_path: Path) -> tuple[Path, Path]:
    marker = tmp_path / "ran.txt"
    evil = tmp_path / "gpt.pt"
    torch.save({"format": "textgen-checkpoint", "version": 1, "kind": "gpt",
                "model": _WritesAFile(marker)}, evil, pickle_protocol=pickle.DEFAULT_PROTOCOL)
    return evil, marker


@pytest.mark.parametrize("entry", ["train --resume", "train --init-from", "evaluate", "sample", "export onnx",
                                   "export torchscript"])
def test_every_entry_point_refuses_it(entry: str, evil_checkpoint: tuple[Path, Path], tiny_corpus_file: Path,
                                      tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    evil, marker = evil_checkpoint
    calls = {
        "train --resume": lambda: train_main(["--resume", "--out", str(evil)]),
        "train --init-from": lambda: train_main(["--init-from", str(evil), "--corpus", str(tiny_corpus_file),
                                                 "--out", str(tmp_path / "new.pt")]),
        "evaluate": lambda: evaluate_main([str(evil), "--corpus", str(tiny_corpus_file)]),
        "sample": lambda: sample_main([str(evil), "--prompt", "To"]),
        "export onnx": lambda: export_main(["onnx", str(evil)]),
        "export torchscript": lambda: export_main(["torchscript", str(evil)]),
    }
    assert calls[entry]() == 1
    err = capsys.readouterr().err
    assert "unsafe" in err and "Traceback" not in err
    assert not marker.exists()
