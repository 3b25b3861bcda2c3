"""runtime/file_kind.py: kinds told by content alone (torch-free), and what a missing model
argument is told to do. The table over every entry point is tests/test_file_kind_table.py."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from runtime.file_kind import CHECKPOINT, PYTORCH, TEXT, missing_model, sniff, wrong_kind


def test_unknown_or_empty_files_are_not_guessed(tmp_path: Path) -> None:
    (tmp_path / "empty").write_bytes(b"")
    (tmp_path / "binary").write_bytes(bytes(range(256)) * 4)
    (tmp_path / "latin1.txt").write_bytes("café au lait\n".encode("latin-1"))
    for name in ("empty", "binary", "latin1.txt", "missing"):
        assert sniff(tmp_path / name) is None, name
        assert wrong_kind(tmp_path / name, (CHECKPOINT,)) is None


def test_text_cut_inside_a_character_is_still_text(tmp_path: Path) -> None:
    path = tmp_path / "long.txt"
    path.write_text("a" * (64 * 1024 - 1) + "é" * 10, encoding="utf-8")
    assert sniff(path) == TEXT


def test_a_torch_zip_without_our_marker_is_another_pytorch_file(tmp_path: Path, tiny_gpt_checkpoint: Path) -> None:
    torch = pytest.importorskip("torch")
    buffer = io.BytesIO()
    torch.save({"model_args": {"n_layer": 2}}, buffer)  # nanoGPT's ckpt.pt shape
    (tmp_path / "ckpt.pt").write_bytes(buffer.getvalue())
    assert sniff(tmp_path / "ckpt.pt") == PYTORCH
    assert "not a textgen checkpoint" in (wrong_kind(tmp_path / "ckpt.pt", (CHECKPOINT,)) or "x")
    assert sniff(tiny_gpt_checkpoint) == CHECKPOINT
    with zipfile.ZipFile(tmp_path / "other.zip", "w") as archive:
        archive.writestr("readme.txt", "hello")
    assert sniff(tmp_path / "other.zip") is None


def test_a_missing_model_says_what_to_do(tmp_path: Path, tiny_gpt_checkpoint: Path) -> None:
    (tmp_path / "gpt.pt").write_bytes(tiny_gpt_checkpoint.read_bytes())
    assert "export it from the checkpoint beside it with `python -m export onnx" in (
        missing_model(tmp_path / "gpt.onnx") or "")
    assert "train a model with `python -m textgen_core.train`" in (missing_model(tmp_path / "x.onnx") or "")
    (tmp_path / "a.onnx").write_bytes(b"\x08\x07")
    assert f"the model files in it: {tmp_path / 'a.onnx'}" in (missing_model(tmp_path) or "")
    assert missing_model(tmp_path / "a.onnx") is None
