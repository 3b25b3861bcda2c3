"""Every path argument of every entry point, given every kind of file it does not take: the error
says which kind it got and which command takes it (runtime/file_kind.py)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from export.cli import main as export_main
from runtime.chat import main as chat_main
from runtime.file_kind import WHAT, sniff
from textgen_core.evaluate import main as evaluate_main
from textgen_core.markup import main as markup_main
from textgen_core.sample import main as sample_main
from textgen_core.train import main as train_main

# The command each kind is pointed to.
HINTS = {
    "checkpoint": "python -m export onnx",
    "onnx": "python -m runtime.chat --model",
    "torchscript": "--trust-torchscript",
    "genai": "og.Model",
    "text": "python -m textgen_core.train --corpus",
}

# entry point -> (the kinds its path argument takes, the call with the path in it)
Entry = tuple[tuple[str, ...], Callable[[str, Path], int]]
ENTRIES: dict[str, Entry] = {
    "sample CKPT": (("checkpoint",), lambda p, ck: sample_main([p, "--max-new-tokens", "2"])),
    "sample --prompt-file": (("text",), lambda p, ck: sample_main([str(ck), "--prompt-file", p])),
    "evaluate CKPT": (("checkpoint",), lambda p, ck: evaluate_main([p])),
    "evaluate --corpus": (("text",), lambda p, ck: evaluate_main([str(ck), "--corpus", p])),
    "export onnx CKPT": (("checkpoint",), lambda p, ck: export_main(["onnx", p])),
    "export torchscript CKPT": (("checkpoint",), lambda p, ck: export_main(["torchscript", p])),
    "export genai CKPT": (("checkpoint",), lambda p, ck: export_main(["genai", p])),
    "chat --model": (("onnx", "torchscript"), lambda p, ck: chat_main(["--model", p, "--prompt", "T"])),
    "chat --prompt-file": (("text",), lambda p, ck: chat_main(["--model", str(ck.with_suffix(".onnx")),
                                                               "--prompt-file", p])),
    "train --init-from": (("checkpoint",), lambda p, ck: train_main(["--init-from", p, "--preset", "nano"])),
    "train --resume --out": (("checkpoint",), lambda p, ck: train_main(["--resume", "--out", p])),
    "train --corpus": (("text",), lambda p, ck: train_main(["--corpus", p, "--preset", "nano",
                                                            "--out", str(ck.parent / "never.pt")])),
    "train --config": (("text",), lambda p, ck: train_main(["--config", p])),
    "train --layers": (("text",), lambda p, ck: train_main(["--model", "stack", "--layers", p, "--preset", "nano",
                                                            "--out", str(ck.parent / "never.pt")])),
    "evaluate --judge": (("checkpoint",), lambda p, ck: evaluate_main([str(ck), "--generation-metrics", "--judge", p,
                                                                      "--corpus", str(ck.parent / "t.txt")])),
    "markup --text": (("text",), lambda p, ck: markup_main(["--text", p])),
    "markup --corpus": (("text",), lambda p, ck: markup_main(["--corpus", p, "--text", str(ck.parent / "t.txt")])),
}


@pytest.fixture(scope="module")
def files(exported_tiny: dict[str, Path], tiny_corpus_file: Path,
          tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One file of every kind, named so that no name gives its kind away."""
    folder = tmp_path_factory.mktemp("kinds")
    made = {}
    for kind, source in (("checkpoint", exported_tiny["checkpoint"]), ("onnx", exported_tiny["onnx"]),
                         ("torchscript", exported_tiny["torchscript"]), ("text", tiny_corpus_file)):
        made[kind] = folder / f"{kind}.bin"
        shutil.copyfile(source, made[kind])
    genai = folder / "genai-folder"
    genai.mkdir()
    (genai / "genai_config.json").write_text("{}")
    shutil.copyfile(exported_tiny["onnx"], genai / "model.onnx")
    made["genai"] = genai
    # what the calls that need a good file of another argument use
    shutil.copyfile(exported_tiny["checkpoint"], folder / "good.pt")
    shutil.copyfile(exported_tiny["onnx"], folder / "good.onnx")
    shutil.copyfile(tiny_corpus_file, folder / "t.txt")
    return made


def test_every_file_is_told_by_its_content(files: dict[str, Path]) -> None:
    assert {kind: sniff(path) for kind, path in files.items()} == {kind: kind for kind in files}


@pytest.mark.parametrize("kind", list(HINTS))
@pytest.mark.parametrize("entry", list(ENTRIES))
def test_wrong_kind_names_what_it_is_and_what_takes_it(
        entry: str, kind: str, files: dict[str, Path], capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    takes, call = ENTRIES[entry]
    if kind in takes:
        pytest.skip("the kind this argument takes")
    monkeypatch.setenv("TEXTGEN_STEP_LIMIT", "1")
    path = files[kind]
    assert call(str(path), path.parent / "good.pt") == 1
    err = " ".join(capsys.readouterr().err.split())
    assert f"{path} is {WHAT[kind]}" in err, err
    assert HINTS[kind] in err, err
