"""The chats' prompt line (runtime/chat.py, runtime/gan.py): line editing and history from the
standard library's `readline` where the platform has it (arrow keys, Ctrl-A/E, Up for the lines
typed before in this session), and the same keys everywhere: Ctrl-C at the prompt clears the
line, Ctrl-D (or end of input) ends the session."""

from __future__ import annotations

import sys

from rich.console import Console
from rich.text import Text

PROMPT = "› "
# Bold cyan; readline must be told (\001 ... \002) that the escape codes take no columns, or it
# misplaces the cursor when it redraws an edited line.
_STYLED_PROMPT = f"\001\033[1;36m\002{PROMPT}\001\033[0m\002"


def line_editing() -> bool:
    """Whether input() edits lines here: readline is importable and stdin is a terminal
    (importing it is what turns editing and history on)."""
    if not sys.stdin.isatty():
        return False
    try:
        import readline  # noqa: F401
    except ImportError:  # Windows without pyreadline, some minimal builds
        return False
    return True


def read_line(console: Console) -> str | None:
    """One line typed at the prompt, or None when the session should end (Ctrl-D, end of
    input). Ctrl-C clears the line and asks again."""
    while True:
        try:
            if line_editing():
                return input(_STYLED_PROMPT if console.is_terminal else PROMPT)
            return console.input(Text(PROMPT, style="bold cyan"))
        except EOFError:
            console.print()
            return None
        except KeyboardInterrupt:  # the half-typed line is dropped; the session goes on
            console.print()
