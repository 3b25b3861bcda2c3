"""The chat in a terminal (a pty): readline's line editing and history, Ctrl-C clears the line at
the prompt and stops a streaming reply, Ctrl-D ends the session (runtime/line_editing.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

pexpect = pytest.importorskip("pexpect")
pytest.importorskip("readline")

UP, LEFT = "\x1b[A", "\x1b[D"


def spawn(model: Path, *flags: str) -> pexpect.spawn:
    child = pexpect.spawn(sys.executable, ["-m", "runtime.chat", "--model", str(model), "--seed", "1", *flags],
                          encoding="utf-8", timeout=60, dimensions=(40, 200),
                          env={"PATH": "/usr/bin:/bin", "TERM": "xterm", "PYTHONPATH": str(Path.cwd())})
    child.expect("Ctrl-D leaves")
    child.expect("› ")
    return child


def test_editing_history_ctrl_c_and_ctrl_d(exported_tiny: dict[str, Path]) -> None:
    child = spawn(exported_tiny["onnx"], "--max-new-tokens", "3")
    # Left moves the cursor: "/rset" becomes "/reset", a command that answers in words.
    child.send("/rset" + LEFT * 3 + "e\r")
    child.expect("session cleared")
    child.expect("› ")
    # Ctrl-C drops a half-typed line and the session goes on.
    child.send("half typed")
    child.expect("half typed")  # readline has the line (echoed) before the interrupt comes
    child.sendintr()
    child.expect("› ")
    assert child.isalive()
    # Up recalls the last line entered.
    child.send(UP + "\r")
    child.expect("session cleared")
    child.expect("› ")
    child.sendeof()
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def test_ctrl_c_stops_a_streaming_reply(exported_tiny: dict[str, Path]) -> None:
    child = spawn(exported_tiny["onnx"], "--max-new-tokens", "1000000")
    child.send("To be\r")
    child.expect("To be")  # echoed by the terminal; then the reply streams
    child.expect(".{20}")  # some of the reply
    child.sendintr()
    child.expect(r"\(stopped\)")
    child.expect("› ")
    child.send("/quit\r")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
