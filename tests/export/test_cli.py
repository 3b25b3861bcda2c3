import subprocess
import sys
from pathlib import Path

import pytest

from export.cli import main
from export.errors import ExportMismatchError
from export.parity import require_parity
from export.staging import staged
from textgen_core.training.checkpoint import make_checkpoint, save_checkpoint


def run_error(capsys: pytest.CaptureFixture[str], args: list[str]) -> str:
    assert main(args) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err
    return err


def test_module_exports_next_to_the_checkpoint(tiny_gpt_checkpoint: Path, tmp_path: Path) -> None:
    ckpt = tmp_path / "model.pt"
    ckpt.write_bytes(tiny_gpt_checkpoint.read_bytes())
    result = subprocess.run([sys.executable, "-m", "export", "onnx", str(ckpt), "-o", str(tmp_path / "out" / "m.onnx")],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert f"wrote {tmp_path / 'out' / 'm.onnx'}" in result.stdout and "max |Δlogits|" in result.stdout
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["m.onnx"]


def test_missing_and_foreign_inputs(tmp_path: Path, tiny_gpt_checkpoint: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert "checkpoint not found" in run_error(capsys, ["onnx", str(tmp_path / "none.pt")])
    text = tmp_path / "notes.pt"
    text.write_text("not a checkpoint")
    assert "notes.pt is a text file: train on it" in run_error(capsys, ["onnx", str(text)])
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"\x00\xff" * 100)
    assert "not a loadable textgen checkpoint" in run_error(capsys, ["onnx", str(garbage)])
    cut = tmp_path / "cut.pt"
    cut.write_bytes(tiny_gpt_checkpoint.read_bytes()[:2000])
    assert "corrupt, truncated or unsafe" in run_error(capsys, ["torchscript", str(cut)])
    gan = tmp_path / "gan.pt"
    save_checkpoint(make_checkpoint(kind="gan", model_config={}, tokenizer={}, model_state={}), gan)
    assert "checkpoint metadata is invalid" in run_error(capsys, ["onnx", str(gan)])  # a GAN without one
    foreign = tmp_path / "foo.pt"
    save_checkpoint({**make_checkpoint(kind="gpt", model_config={}, tokenizer={}, model_state={}),
                     "kind": "foo"}, foreign)
    assert "holds a 'foo' model; export supports: gpt, gan, stack" in run_error(capsys, ["onnx", str(foreign)])
    assert not list(tmp_path.glob("*.onnx"))


def test_unwritable_output(tiny_gpt_checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "file").write_text("x")
    err = run_error(capsys, ["onnx", str(tiny_gpt_checkpoint), "-o", str(tmp_path / "file" / "m.onnx")])
    assert "cannot create" in err


@pytest.mark.parametrize("args", [["onnx", "x.pt", "--quantize", "int2"], ["genai", "x.pt", "--quantize", "fp16"],
                                  ["tflite", "x.pt"], []])
def test_usage_errors_exit_2(args: list[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(args)
    assert exc.value.code == 2


def test_parity_failure_is_loud_and_leaves_no_file(tmp_path: Path) -> None:
    target = tmp_path / "m.onnx"
    def failing_export() -> None:
        with staged(target) as staging:
            staging.write_bytes(b"bad export")
            require_parity(0.5, target)

    with pytest.raises(ExportMismatchError, match=r"max \|Δlogits\| 0.5 exceeds 1e-04"):
        failing_export()
    with pytest.raises(ExportMismatchError):
        require_parity(float("nan"), target)
    assert list(tmp_path.iterdir()) == []


def test_an_existing_output_is_replaced_only_with_overwrite(tiny_gpt_checkpoint: Path, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    ckpt = tmp_path / "model.pt"
    ckpt.write_bytes(tiny_gpt_checkpoint.read_bytes())
    target = tmp_path / "notes.ts"
    target.write_text("keep me")
    assert "notes.ts exists; pass --overwrite" in run_error(capsys, ["torchscript", str(ckpt), "-o", str(target)])
    assert target.read_text() == "keep me"
    assert "is the checkpoint being exported" in run_error(
        capsys, ["torchscript", str(ckpt), "-o", str(ckpt), "--overwrite"])
    assert main(["torchscript", str(ckpt), "--output", str(target), "--overwrite"]) == 0
    assert target.read_bytes()[:2] == b"PK"
