"""The argument parser every textgen entry point builds on, and the flags they share by meaning.

`Parser` is argparse's parser with three habits of its own:
- nanoGPT's spellings: `--num_samples 3`, `--max_iters=200` are read as `--num-samples`,
  `--max-iters` (any dash flag of the parser, its subcommands included; not shown in --help);
- a value flag without a metavar is shown with its type (`--batch-size N`, `--dropout X`), and
  a help text without its default gets `(default ...)` appended when there is one;
- a bare number left over after a flag (`--temperature 0.5 1.0`) is answered with the
  comma-list spelling every sampler uses.
`add_temperature` is the one `--temperature` of `textgen_core.sample`, `runtime.chat` and
`textgen_core.evaluate`: one value, a comma list (`0.5,0.8,1.0`) or the flag repeated.
"""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Sequence
from typing import Any, NoReturn

_NUMBER = re.compile(r"^-?(\d+\.?\d*|\.\d+)$")
_TYPE_METAVARS = {int: "N", float: "X"}
# (the `python -m` prog, the name to show instead) while the `textgen` command runs a module
# (runtime/commands.py), so that usage and errors name what the user typed.
PROG_AS: tuple[str, str] | None = None


class Parser(argparse.ArgumentParser):
    """argparse.ArgumentParser with the snake_case aliases, type metavars and defaults in help
    described in the module docstring; subcommand parsers are of the same class."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        prog = kwargs.get("prog")
        if PROG_AS is not None and isinstance(prog, str) and prog.startswith(PROG_AS[0]):
            kwargs["prog"] = PROG_AS[1] + prog[len(PROG_AS[0]):]
        super().__init__(*args, **kwargs)

    def add_argument(self, *args: Any, **kwargs: Any) -> argparse.Action:
        return _add_argument(super().add_argument, *args, **kwargs)

    def add_argument_group(self, *args: Any, **kwargs: Any) -> argparse._ArgumentGroup:
        group = super().add_argument_group(*args, **kwargs)
        original = group.add_argument
        group.add_argument = lambda *a, **k: _add_argument(original, *a, **k)  # type: ignore[method-assign]
        return group

    def parse_known_args(self, args: Sequence[str] | None = None,  # type: ignore[override]
                         namespace: argparse.Namespace | None = None
                         ) -> tuple[argparse.Namespace, list[str]]:
        if args is None:
            import sys

            args = sys.argv[1:]
        return super().parse_known_args(self.dashed(list(args)), namespace)

    def dashed(self, args: list[str]) -> list[str]:
        """`args` with each `--snake_case` flag this parser knows as `--snake-case` rewritten
        (up to a `--` that ends the flags); values and unknown flags are left alone."""
        known = set(self._option_string_actions)
        out = []
        for i, arg in enumerate(args):
            if arg == "--":
                return out + args[i:]
            name, eq, value = arg.partition("=")
            if name.startswith("--") and "_" in name and name not in known:
                candidate = "--" + name[2:].replace("_", "-")
                if candidate in known:
                    arg = candidate + eq + value
            out.append(arg)
        return out

    def error(self, message: str) -> NoReturn:
        if message.startswith("unrecognized arguments:"):
            extra = message.partition(":")[2].split()
            if extra and all(_NUMBER.match(a) for a in extra):
                message += ("; several values of one flag are one comma list (--temperature "
                            "0.5,1.0) or the flag repeated")
            else:  # a file given without its flag (`runtime.chat models/gpt.onnx`)
                message += next((f"; {hint}" for hint in map(_path_hint, extra) if hint), "")
        elif "invalid choice: '" in message:  # `python -m export models/gpt.pt onnx`
            value = message.partition("invalid choice: '")[2].partition("'")[0]
            first = message.partition("(choose from '")[2].partition("'")[0]
            if first and _path_hint(value):
                message += f"; the command comes first: `{self.prog} {first} {value}`"
        super().error(message)


def _path_hint(arg: str) -> str | None:
    """What an existing file given as a bare argument is and which command takes it."""
    from runtime.file_kind import WHAT, how_to_use, sniff

    kind = sniff(arg) if arg and not arg.startswith("-") else None
    return None if kind is None else f"{arg} is {WHAT[kind]}: {how_to_use(arg, kind, ())}"


def _add_argument(add: Any, *args: Any, **kwargs: Any) -> argparse.Action:
    action = add(*args, **kwargs)
    takes_value = action.nargs != 0 and action.option_strings
    if takes_value and action.metavar is None and action.choices is None:
        kind = action.type if action.type in _TYPE_METAVARS else getattr(action.type, "metavar", None)
        action.metavar = _TYPE_METAVARS.get(kind, kind) if kind is not None else None
    default = action.default
    shown = default not in (None, False, argparse.SUPPRESS, [], "")
    if action.help and shown and "default" not in action.help and action.help != argparse.SUPPRESS:
        action.help += " (default %(default)s)"
    return action


def temperatures(text: str) -> list[float]:
    """`0.8` or `0.5,0.8,1.0`: the temperatures of one `--temperature`."""
    try:
        values = [float(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a number or a comma list of numbers (e.g. 0.8 or 0.5,1.0)") from None
    if not values or not all(math.isfinite(t) for t in values):
        raise argparse.ArgumentTypeError(f"{text!r}: give finite numbers, e.g. 0.8 or 0.5,1.0")
    return values


temperatures.metavar = "T[,T...]"  # type: ignore[attr-defined]


def add_echo(parser: Any) -> None:
    """`--echo`: print the prompt before its continuation; off by default in every sampler, so
    stdout holds the continuation only (what a script pipes on)."""
    parser.add_argument("--echo", action=argparse.BooleanOptionalAction, default=False,
                        help="print the prompt before its continuation (default: the continuation "
                             "only)")


def add_temperature(parser: Any, help: str, *names: str) -> None:
    """`--temperature` (and any older `names`): one value, a comma list, or repeated; parsed to a
    list of floats, None when not given."""
    parser.add_argument("--temperature", *names, dest="temperature", type=temperatures,
                        action="extend", default=None, help=help)
