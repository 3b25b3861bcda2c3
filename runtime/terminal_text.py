"""Make model, user or file text safe to write to a terminal, and print errors through it.

A model trained on arbitrary bytes can emit ESC sequences (colour changes, cursor moves, window
title or clipboard writes); so can a pasted prompt echoed back, and so can a name or value read
from a file that ends up in an error message. Every control character except newline and tab,
C1 controls included (some terminals treat U+009B as CSI), invisible format characters such as
bidirectional overrides, and lone surrogates (which no encoding can write) are replaced by U+FFFD
before anything is written.

`print_error` is the one printer of every CLI's `error: ...` line: the message is filtered and
kept to one line, whatever the file that caused it held.
"""

from __future__ import annotations

import unicodedata

from rich.console import Console
from rich.text import Text

REPLACEMENT = "\ufffd"
_KEEP = {"\n", "\t"}
_REPLACED = ("Cc", "Cf", "Cs")


def sanitize(text: str) -> str:
    if text.isprintable():
        return text
    return "".join(
        c if c in _KEEP or unicodedata.category(c) not in _REPLACED else REPLACEMENT
        for c in text
    )


def plain(text: object, style: str = "") -> Text:
    """`text` (a name, a title, a path: anything a file, a server or a user chose) for rich,
    filtered and as plain text: `[bold]` or `[link=...]` in it is shown, never interpreted."""
    return Text(sanitize(str(text)), style=style)


def error_line(message: object) -> str:
    """`message` (an exception or text) sanitized and on one line."""
    return " ".join(sanitize(str(message)).split("\n"))


def print_error(message: object, console: Console | None = None) -> None:
    """`error: <message>` as one filtered line, on `console` (default: stderr)."""
    console = console if console is not None else Console(stderr=True)
    console.print(Text.assemble(("error: ", "bold red"), error_line(message)), soft_wrap=True)
