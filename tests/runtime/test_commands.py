"""runtime/commands.py: the `textgen` console script hands each subcommand to its module's
main(argv), with the module's own parser, and says clearly what it cannot run."""

from __future__ import annotations

import importlib
import tomllib
from pathlib import Path

import pytest

from runtime import commands


def test_the_console_script_is_declared() -> None:
    pyproject = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text(encoding="utf-8"))
    assert pyproject["project"]["scripts"]["textgen"] == "runtime.commands:main"
    assert set(commands.COMMANDS) == {"train", "sample", "evaluate", "export", "chat", "serve", "corpus",
                                      "markup"}


def test_usage_and_unknown_commands(capsys: pytest.CaptureFixture[str]) -> None:
    assert commands.main([]) == 2
    assert commands.main(["--help"]) == 0
    assert "textgen train" not in capsys.readouterr().out  # the table, not the subcommands' own help
    assert commands.main(["sampel"]) == 2
    assert "did you mean `textgen sample`?" in capsys.readouterr().err


@pytest.mark.parametrize("name", list(commands.COMMANDS))
def test_each_command_is_its_modules_parser(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    module_name = commands.COMMANDS[name][0]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError:
        pytest.skip(f"{module_name} is not there yet")
    with pytest.raises(SystemExit) as exit_info:
        commands.main([name, "--help"])
    assert exit_info.value.code == 0
    shown = capsys.readouterr().out
    assert shown.startswith(f"usage: textgen {name}")
    own = module.build_parser().format_help()  # the same parser, under its python -m name
    prog = commands.PROGS.get(name, f"python -m {module_name}")
    assert " ".join(shown.split()) == " ".join(own.replace(prog, f"textgen {name}").split())
    assert module.build_parser().prog == prog  # the name is back once the command is done


def test_a_run_goes_through_with_its_exit_code(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert commands.main(["sample", str(tmp_path / "none.pt")]) == 1
    assert "checkpoint not found" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        commands.main(["chat", "--no-such-flag"])
    assert exit_info.value.code == 2
    assert "usage: textgen chat" in capsys.readouterr().err


def test_a_missing_module_is_one_clear_line(monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(commands.COMMANDS, "serve", ("runtime.no_such_server", "x"))
    assert commands.main(["serve"]) == 1
    assert capsys.readouterr().err.strip() == ("textgen serve: this install has no runtime.no_such_server "
                                               "(the command is not part of this version)")
