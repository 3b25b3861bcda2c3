"""The `textgen` console script: `textgen train|sample|evaluate|export|chat|serve|corpus|markup ...`.

A table from subcommand to module; each subcommand hands the rest of the command line to that
module's `main(argv)`, so `textgen sample ...` is `python -m textgen_core.sample ...` with the same
parser, flags and exit codes. Modules are imported only when their subcommand runs: the
runtime installs without torch, and there `textgen chat` works while `textgen train` says what
to install instead of failing on an import.
"""

from __future__ import annotations

import difflib
import importlib
import sys
from collections.abc import Sequence

from runtime import command_line

# subcommand -> (module, what it does)
COMMANDS = {
    "train": ("textgen_core.train", "train a model and write a checkpoint"),
    "sample": ("textgen_core.sample", "continue a prompt with a checkpoint (torch)"),
    "evaluate": ("textgen_core.evaluate", "loss, perplexity and bits per character of a checkpoint"),
    "export": ("export.cli", "write an ONNX file, a genai folder, TorchScript or a web page"),
    "chat": ("runtime.chat", "sample an exported model in the terminal (no torch)"),
    "serve": ("runtime.serve", "serve an exported model over HTTP (no torch)"),
    "corpus": ("textgen_core.corpus", "search Project Gutenberg's catalogue, check collections"),
    "markup": ("textgen_core.markup", "mark the passages of a text copied verbatim from a corpus"),
}
# Their `python -m` names, as the parsers spell their prog.
PROGS = {"export": "python -m export"}


def usage() -> str:
    width = max(map(len, COMMANDS))
    rows = "\n".join(f"  {name:<{width}}  {text}" for name, (_, text) in COMMANDS.items())
    return (f"usage: textgen COMMAND [ARGS...]\n\ncommands:\n{rows}\n\n"
            "`textgen COMMAND --help` lists a command's flags; each is also `python -m MODULE`.")


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(usage())  # noqa: T201 (a command line's own help)
        return 0 if args else 2
    name, rest = args[0], args[1:]
    if name not in COMMANDS:
        close = difflib.get_close_matches(name, COMMANDS, n=1)
        hint = f"; did you mean `textgen {close[0]}`?" if close else ""
        print(f"textgen: unknown command {name!r}{hint}\n\n{usage()}", file=sys.stderr)  # noqa: T201
        return 2
    module_name = COMMANDS[name][0]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        print(f"textgen {name}: {_missing(module_name, exc)}", file=sys.stderr)  # noqa: T201
        return 1
    command_line.PROG_AS = (PROGS.get(name, f"python -m {module_name}"), f"textgen {name}")
    try:
        return int(module.main(rest) or 0)
    finally:
        command_line.PROG_AS = None


def _missing(module_name: str, exc: ModuleNotFoundError) -> str:
    missing = exc.name or "?"
    if module_name == missing or module_name.startswith(missing + "."):
        return f"this install has no {module_name} (the command is not part of this version)"
    if missing.split(".")[0] == "torch":
        return ("needs torch, which this install lacks (the runtime alone installs without it): "
                "install textgen with its training dependencies")
    return f"needs the package {missing.split('.')[0]!r}, which is not installed"
