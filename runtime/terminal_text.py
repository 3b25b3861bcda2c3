"""Make model or user text safe to write to a terminal.

A model trained on arbitrary bytes can emit ESC sequences (colour changes, cursor moves, window
title or clipboard writes); so can a pasted prompt echoed back. Every control character except
newline and tab, C1 controls included (some terminals treat U+009B as CSI), and invisible format
characters such as bidirectional overrides are replaced by U+FFFD before anything is written.
"""

from __future__ import annotations

import unicodedata

REPLACEMENT = "\ufffd"
_KEEP = {"\n", "\t"}


def sanitize(text: str) -> str:
    if text.isprintable():
        return text
    return "".join(
        c if c in _KEEP or unicodedata.category(c) not in ("Cc", "Cf") else REPLACEMENT
        for c in text
    )
