import os
import subprocess
import sys
from pathlib import Path

import pexpect
import pytest

import runtime
from runtime.terminal_text import sanitize

REPO = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(REPO), "TERM": "xterm-256color", "COLUMNS": "100"}


def chat(*args: str, stdin: str | bytes | None = None) -> subprocess.CompletedProcess:
    data = stdin.encode() if isinstance(stdin, str) else stdin
    return subprocess.run([sys.executable, "-m", "runtime.chat", *args], input=data, cwd=REPO,
                          capture_output=True, timeout=120, env=ENV)


def test_one_shot_prints_only_the_continuation(exported_tiny: dict[str, Path]) -> None:
    model = str(exported_tiny["onnx"])
    result = chat("--model", model, "--prompt", "To be", "--temperature", "0", "--max-new-tokens", "50")
    assert result.returncode == 0, result.stderr
    greedy = "".join(runtime.load(model).generate("To be", max_new_tokens=50, temperature=0))
    assert result.stdout.decode() == greedy + "\n"
    again = chat("--model", model, "--prompt", "To", "--seed", "5", "--max-new-tokens", "30")
    assert again.stdout == chat("--model", model, "--prompt", "To", "--seed", "5", "--max-new-tokens", "30").stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--prompt", "a€b"], "does not know: '€'"),
        (["--prompt", "To", "--max-new-tokens", "0"], "--max-new-tokens must be a positive integer"),
        (["--prompt", "To", "--max-new-tokens", "-4"], "--max-new-tokens must be a positive integer"),
        (["--prompt", "To", "--temperature", "-1"], "--temperature must be a finite number >= 0"),
        (["--prompt", "To", "--top-p", "1.5"], "--top-p must be in"),
    ],
)
def test_bad_input_is_one_line(exported_tiny: dict[str, Path], args: list[str], message: str) -> None:
    result = chat("--model", str(exported_tiny["onnx"]), *args)
    err = result.stderr.decode().strip()
    assert result.returncode == 1 and err.startswith("error: ") and message in err
    assert "\n" not in err and "Traceback" not in err


def test_bad_model_files_are_one_line(tmp_path: Path, exported_tiny: dict[str, Path]) -> None:
    (tmp_path / "notes.onnx").write_text("hello")
    (tmp_path / "garbage.onnx").write_bytes(b"\x00\xff" * 100)
    checkpoint = exported_tiny["checkpoint"]
    for path, message in ((tmp_path / "none.onnx", "model file not found"),
                          (tmp_path / "garbage.onnx", "not a usable ONNX model file"),
                          (tmp_path / "notes.onnx", "notes.onnx is a text file: train on it"),
                          (checkpoint, f"{checkpoint} is a training checkpoint: export it first with "
                                       f"`python -m export onnx {checkpoint}`")):
        result = chat("--model", str(path), "--prompt", "To")
        err = " ".join(result.stderr.decode().split())
        assert result.returncode == 1 and message in err and "Traceback" not in err


def test_session_from_a_pipe_survives_odd_input(exported_tiny: dict[str, Path]) -> None:
    lines = b"To be\n/temp 0.3\n\n" + b"x" * 1_000_000 + b"\n\xff\xfe broken utf-8\n/temp abc\n/nope\n/history\n"
    result = chat("--model", str(exported_tiny["onnx"]), "--max-new-tokens", "20", "--seed", "1", stdin=lines)
    out = result.stdout.decode()
    assert result.returncode == 0, result.stderr
    assert "temperature set to 0.3" in out and "tok/s" in out
    assert "does not know" in out and "/temp needs a number" in out and "unknown command /nope" in out


def test_terminal_escapes_from_the_model_or_prompt_never_reach_the_terminal() -> None:
    assert sanitize("red \x1b[31mtext\x1b]0;title\x07 \x9b2J tab\tnew\nline \u202e") == (
        "red \ufffd[31mtext\ufffd]0;title\ufffd \ufffd2J tab\tnew\nline \ufffd"
    )


def test_interactive_chat_through_a_pseudo_terminal(exported_tiny: dict[str, Path]) -> None:
    child = pexpect.spawn(sys.executable, ["-m", "runtime.chat", "--model", str(exported_tiny["onnx"]),
                                           "--seed", "1", "--max-new-tokens", "40"],
                          cwd=str(REPO), env=ENV, encoding="utf-8", timeout=60, dimensions=(40, 120))
    child.expect("textgen chat")
    child.expect("› ")
    child.sendline("To be")
    child.expect(r"40 tokens, [\d.]+ tok/s")
    child.expect("› ")
    child.sendline("/temp 0.3")
    child.expect("temperature set to 0.3")
    child.expect("› ")
    child.sendline("/reset")
    child.expect("session cleared")
    child.sendline("/quit")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def test_ctrl_c_stops_a_reply_not_the_program(exported_tiny: dict[str, Path]) -> None:
    child = pexpect.spawn(sys.executable, ["-m", "runtime.chat", "--model", str(exported_tiny["onnx"]),
                                           "--max-new-tokens", "2000000"],
                          cwd=str(REPO), env=ENV, encoding="utf-8", timeout=60, dimensions=(40, 120))
    child.expect("› ")
    child.sendline("To be")
    child.expect_exact("To be\r\n")  # the terminal's echo of the line
    child.expect(r"\S")  # the first printed characters of the reply: streaming has started
    child.sendintr()
    child.expect(r"\(stopped\)")
    child.expect("› ")
    child.sendeof()
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def test_torchscript_needs_the_trust_flag(exported_tiny: dict[str, Path]) -> None:
    ts = str(exported_tiny["torchscript"])
    refused_run = chat("--model", ts, "--prompt", "To")
    assert refused_run.returncode == 1 and b"--trust-torchscript" in refused_run.stderr
    trusted = chat("--model", ts, "--prompt", "To be", "--temperature", "0", "--max-new-tokens", "40",
                   "--trust-torchscript")
    assert trusted.returncode == 0, trusted.stderr
    greedy = "".join(runtime.load(exported_tiny["onnx"]).generate("To be", max_new_tokens=40, temperature=0))
    assert trusted.stdout.decode() == greedy + "\n"
