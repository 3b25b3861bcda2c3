"""Stop texts: a streamed sequence ends where one of them appears, and none is ever streamed.

`check_stops` checks what a command or request gave; `StopFilter` follows one sequence's text
as it streams, cuts it before the earliest stop text, and holds back pieces that might begin
one until they cannot (runtime/multi_sample.py and the serving engine, runtime/scheduler.py).
"""

from __future__ import annotations

from collections.abc import Sequence

from runtime.errors import SamplingError


def check_stops(stop: Sequence[str]) -> list[str]:
    stops = [stop] if isinstance(stop, str) else list(stop)
    for text in stops:
        if not isinstance(text, str) or not text:
            raise SamplingError("--stop needs a non-empty text")
    return stops


class StopFilter:
    """The text of one sequence as it streams, cut before the first stop text.

    Each stop text is matched character by character with its KMP failure table (Knuth, Morris
    and Pratt 1977), so a piece costs time in its own length, whatever the length of a stop text
    or of the text held back; the longest partial match is what is held."""

    def __init__(self, stops: Sequence[str]) -> None:
        self.stops = list(stops)
        self._fail = [_failure_table(s) for s in self.stops]
        self._matched = [0] * len(self.stops)  # per stop text: how much of it the text now ends with
        self.held = ""  # text that may begin a stop text: not streamed yet
        self.stopped = False

    def feed(self, piece: str) -> str:
        """The part of `piece` (after what was held) that is safe to stream now; sets
        `stopped` once a stop text has appeared (what comes after it is dropped)."""
        if self.stopped:
            return ""
        text = self.held + piece
        base = len(self.held)
        matched = self._matched
        for offset, c in enumerate(piece):
            cut = -1
            for j, stop in enumerate(self.stops):
                k, fail = matched[j], self._fail[j]
                while k and stop[k] != c:
                    k = fail[k - 1]
                if stop[k] == c:
                    k += 1
                if k == len(stop):  # the earliest-starting stop text that ends here wins
                    start = base + offset + 1 - k
                    cut = start if cut < 0 else min(cut, start)
                    k = fail[k - 1]
                matched[j] = k
            if cut >= 0:
                self.stopped, self.held = True, ""
                return text[:cut]
        hold = max(matched, default=0)
        self.held = text[len(text) - hold:] if hold else ""
        return text[:len(text) - hold]

    def flush(self) -> str:
        """What was held when the sequence ends without a stop text."""
        held, self.held = self.held, ""
        self._matched = [0] * len(self.stops)
        return held


def _failure_table(text: str) -> list[int]:
    """KMP's table: entry i is the length of the longest proper prefix of text[:i + 1] that is
    also its suffix."""
    table = [0] * len(text)
    k = 0
    for i in range(1, len(text)):
        while k and text[i] != text[k]:
            k = table[k - 1]
        if text[i] == text[k]:
            k += 1
        table[i] = k
    return table
