"""`python -m textgen_core.markup`, `sample --html` and `runtime.chat --markup` end to end."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import runtime
from textgen_core.data.corpus import corpus_fingerprint, resolve_corpus
from textgen_core.markup import main as markup_main
from textgen_core.sample import main as sample_main
from textgen_core.training.checkpoint import load_checkpoint, save_checkpoint

REPO = Path(__file__).resolve().parents[2]


def one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err
    return err


def test_markup_cli_writes_escaped_html(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    corpus = tmp_path / "books"
    corpus.mkdir()
    (corpus / "one.txt").write_text("The <b>bold</b> fox & the hound ran far away.\n", encoding="utf-8")
    (corpus / "two.txt").write_text("A completely different second book lives here.\n", encoding="utf-8")
    text = tmp_path / "gen.txt"
    text.write_text("qq<b>bold</b> fox & the houndqq different second bookqq", encoding="utf-8")
    out = tmp_path / "out.html"
    assert markup_main(["--corpus", str(corpus), "--text", str(text), "--html", str(out), "--min-run", "10"]) == 0
    page = out.read_text(encoding="utf-8")
    assert "&lt;b&gt;bold&lt;/b&gt; fox &amp; the hound" in page and "<b>bold</b>" not in page
    assert "one.txt" in page and "two.txt" in page
    stdout = capsys.readouterr().out
    assert "occur verbatim" in stdout and "longest 27 characters, from one.txt" in stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--text", "missing.txt"], "--text file not found: missing.txt"),
        (["--text", "gen.txt", "--min-run", "0"], "--min-run must be a positive integer, got 0"),
        (["--text", "gen.txt", "--corpus", "nowhere/"], "corpus not found: nowhere/"),
        (["--text", "gen.txt", "--html", "no/such/dir/x.html"], "cannot write no/such/dir/x.html"),
    ],
)
def test_markup_cli_bad_input(tmp_path: Path, tiny_corpus_file: Path, capsys: pytest.CaptureFixture[str],
                              monkeypatch: pytest.MonkeyPatch, args: list[str], message: str) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "gen.txt").write_text("To be, or not to be, that is the question", encoding="utf-8")
    assert markup_main(["--corpus", str(tiny_corpus_file), *args]) == 1
    assert message in one_line_error(capsys)


def test_sample_html_uses_the_checkpoints_corpus(tiny_gpt_checkpoint: Path, tiny_corpus_file: Path,
                                                  tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    payload = load_checkpoint(tiny_gpt_checkpoint)
    fingerprint = corpus_fingerprint(resolve_corpus(str(tiny_corpus_file)))
    payload["train_state"] = {**payload["train_state"], "corpus": str(tiny_corpus_file),
                              "corpus_fingerprint": fingerprint}
    ckpt = tmp_path / "tiny.pt"
    save_checkpoint(payload, ckpt)
    out = tmp_path / "sample.html"
    args = [str(ckpt), "--prompt", "To be", "--max-new-tokens", "120", "--temperature", "0", "--html", str(out),
            "--echo"]
    assert sample_main(args) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("To be") and len(captured.out) == len("To be") + 121
    page = out.read_text(encoding="utf-8")
    # Greedy decoding of a model trained on this tiny corpus copies from it.
    assert '<span class="c' in page and "hamlet.txt" in page and "occur verbatim" in captured.err
    assert sample_main([str(tiny_gpt_checkpoint), "--max-new-tokens", "5", "--html", str(out)]) == 1
    assert "records no training corpus; pass --markup-corpus" in one_line_error(capsys)


def test_chat_markup_in_prompt_mode(exported_tiny: dict[str, Path], tiny_corpus_file: Path) -> None:
    model = str(exported_tiny["onnx"])
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "runtime.chat", "--model", model, "--prompt", "To be",
               "--temperature", "0", "--max-new-tokens", "80"]
    result = subprocess.run([*command, "--markup", str(tiny_corpus_file), "--min-run", "8"],
                            capture_output=True, text=True, timeout=120, env=env, cwd=REPO)
    assert result.returncode == 0, result.stderr
    greedy = "".join(runtime.load(model).generate("To be", max_new_tokens=80, temperature=0))
    assert result.stdout == greedy + "\n"  # plain text when stdout is not a terminal
    assert "occur verbatim" in result.stderr and ">= 8 characters" in result.stderr
    bad = subprocess.run([*command, "--markup", "no-such-corpus.txt"], capture_output=True, text=True,
                         timeout=120, env=env, cwd=REPO)
    assert bad.returncode == 1 and bad.stderr.strip().startswith("error: markup corpus not found")
