"""runtime/command_line.py: every entry point's flags have help and a type or choices shown, the
nanoGPT snake_case spellings are read as the dash flags, and the samplers share one
--temperature, --echo and --max-new-tokens."""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from runtime.chat import build_parser as chat_parser
from runtime.command_line import Parser
from textgen_core.evaluate import build_parser as evaluate_parser
from textgen_core.sample import build_parser as sample_parser
from textgen_core.train import build_parser as train_parser

ENTRY_POINTS = ["textgen_core.train", "textgen_core.sample", "textgen_core.evaluate", "textgen_core.markup",
                "textgen_core.corpus", "export.cli", "runtime.chat", "runtime.serve"]


def parsers(name: str) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError:
        pytest.skip(f"{name} is not there yet")
    stack = [(name, module.build_parser())]
    while stack:
        label, parser = stack.pop()
        yield label, parser
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                stack += [(f"{label} {sub}", p) for sub, p in action.choices.items()]


@pytest.mark.parametrize("name", ENTRY_POINTS)
def test_every_flag_has_help_and_a_metavar(name: str) -> None:
    missing, untyped = [], []
    for label, parser in parsers(name):
        assert isinstance(parser, Parser), label
        for action in parser._actions:
            if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
                continue
            shown = action.option_strings or [action.dest]
            if not (action.help or "").strip():
                missing.append(f"{label} {shown[0]}")
            if action.nargs != 0 and action.metavar is None and action.choices is None:
                untyped.append(f"{label} {shown[0]}")
        parser.format_help()  # every %(default)s fills in
    assert not missing, f"flags without help: {missing}"
    assert not untyped, f"flags without a metavar or choices: {untyped}"


def test_help_shows_defaults_and_hides_the_aliases() -> None:
    text = " ".join(train_parser().format_help().split())
    assert "--max-iters N optimizer steps of the run (default: the preset's, else 2000)" in text
    assert "--optimizer {adamw,muon}" in text and "--dropout X" in text
    assert "max_iters" not in text and "--num_samples" not in sample_parser().format_help()


def test_snake_case_spellings_are_the_dash_flags() -> None:
    args = sample_parser().parse_args(["ck.pt", "--num_samples", "3", "--max_new_tokens=7", "--top_k", "5"])
    assert (args.num_samples, args.max_new_tokens, args.top_k) == (3, 7, 5)
    args = train_parser().parse_args(["--max_iters", "3", "--learning_rate=0.01", "--init_from", "x.pt"])
    assert (args.max_iters, args.learning_rate, args.init_from) == (3, 0.01, "x.pt")
    export = importlib.import_module("export.cli").build_parser()
    assert export.parse_args(["onnx", "ck.pt", "--eval_text", "t.txt"]).eval_text == "t.txt"


def test_unknown_snake_case_is_still_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        sample_parser().parse_args(["ck.pt", "--no_such_flag", "1"])
    assert "--no_such_flag" in capsys.readouterr().err


@pytest.mark.parametrize("build", [sample_parser, chat_parser])
def test_one_temperature_convention(build) -> None:
    head = ["ck.pt"] if build is sample_parser else []
    args = build().parse_args(["--temperature", "0.8", *head])  # the path after the flag
    assert args.temperature == [0.8]
    assert build().parse_args([*head, "--temperature", "0.5,1.0"]).temperature == [0.5, 1.0]
    assert build().parse_args([*head, "--temperature", "0.5", "--temperature", "1"]).temperature == [0.5, 1.0]
    assert build().parse_args(head).temperature is None


def test_sample_takes_its_checkpoint_after_the_temperature() -> None:
    args = sample_parser().parse_args(["--temperature", "0.8", "models/gpt.pt"])
    assert args.checkpoint == "models/gpt.pt"


def test_evaluate_takes_the_same_comma_list() -> None:
    assert evaluate_parser().parse_args(["ck.pt", "--temperature", "0.5,1"]).temperatures == ["0.5,1"]
    assert evaluate_parser().parse_args(["ck.pt", "--temperatures", "0.5,1"]).temperatures == ["0.5,1"]
    repeated = evaluate_parser().parse_args(["ck.pt", "--temperature", "0.5", "--temperature", "1"])
    assert repeated.temperatures == ["0.5", "1"]  # read as the list 0.5,1 (metrics/generation_eval.py)


def test_a_space_list_is_answered_with_the_comma_list(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        chat_parser().parse_args(["--temperature", "0.5", "1.0"])
    assert "comma list (--temperature 0.5,1.0)" in capsys.readouterr().err


def test_samplers_share_echo_and_length_defaults() -> None:
    sample = sample_parser().parse_args(["ck.pt"])
    chat = chat_parser().parse_args([])
    assert sample.echo is chat.echo is False
    assert sample_parser().parse_args(["ck.pt", "--echo"]).echo is True
    import runtime.chat
    import textgen_core.sample
    assert runtime.chat.DEFAULT_MAX_NEW_TOKENS == textgen_core.sample.DEFAULT_MAX_NEW_TOKENS


def test_a_file_given_without_its_flag_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("some text to train on\n")
    with pytest.raises(SystemExit):
        chat_parser().parse_args([str(text)])
    err = " ".join(capsys.readouterr().err.split())
    assert f"unrecognized arguments: {text}; {text} is a text file: train on it with" in err
    export = importlib.import_module("export.cli").build_parser()
    with pytest.raises(SystemExit):
        export.parse_args([str(text), "onnx"])  # the subcommand after the path
    assert f"the command comes first: `python -m export onnx {text}`" in " ".join(capsys.readouterr().err.split())
