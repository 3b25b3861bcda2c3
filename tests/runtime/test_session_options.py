"""onnxruntime workers spin by default (the server's sleep); TEXTGEN_SPIN=0 or 1 overrides."""

import pytest

from runtime.gpt import session_options
from runtime.onnx_file import SPIN_VARIABLE, basic_session_options


def _spinning(options) -> bool:
    try:
        return options.get_session_config_entry("session.intra_op.allow_spinning") != "0"
    except RuntimeError:  # never set: onnxruntime's default, which spins
        return True


def test_workers_spin_unless_told_not_to(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SPIN_VARIABLE, raising=False)
    assert _spinning(session_options(None)) and _spinning(basic_session_options(2))
    monkeypatch.setenv(SPIN_VARIABLE, "0")
    assert not _spinning(session_options(None)) and not _spinning(basic_session_options(2))
    assert basic_session_options(2).intra_op_num_threads == 2


def test_the_server_sleeps_unless_told_to_spin(monkeypatch: pytest.MonkeyPatch) -> None:
    """The server's own threads need the cores that spinning workers would hold."""
    from runtime.serve import server_spins

    monkeypatch.delenv(SPIN_VARIABLE, raising=False)
    assert not server_spins() and not _spinning(session_options(None, server_spins()))
    assert _spinning(session_options(None, True)) and not _spinning(basic_session_options(2, False))
    monkeypatch.setenv(SPIN_VARIABLE, "1")
    assert server_spins()
