"""Show a Markup: as a standalone HTML page (every piece of text escaped) or as rich Text for
the terminal (every piece of text sanitized).

Runs are coloured by length in four steps relative to the minimum run m: [m, 2m), [2m, 4m),
[4m, 8m) and 8m or more; the longer the run, the stronger the colour.
"""

from __future__ import annotations

import html

from rich.text import Text

from runtime.markup.copy_index import Markup, Run
from runtime.terminal_text import sanitize

# (background for HTML, rich style for the terminal), weakest first.
LEVELS = (
    ("#fff3b0", "black on light_goldenrod2"),
    ("#ffd166", "black on orange1"),
    ("#f4845f", "black on dark_orange3"),
    ("#c9184a", "bold white on red3"),
)


def level(run_length: int, min_run: int) -> int:
    ratio = run_length / min_run
    return 0 if ratio < 2 else 1 if ratio < 4 else 2 if ratio < 8 else 3


def level_ranges(min_run: int) -> list[str]:
    m = min_run
    return [f"{m}-{2 * m - 1}", f"{2 * m}-{4 * m - 1}", f"{4 * m}-{8 * m - 1}", f"{8 * m}+"]


def _pieces(markup: Markup) -> list[tuple[str, Run | None]]:
    """The text cut into (piece, run or None) in order."""
    pieces: list[tuple[str, Run | None]] = []
    at = 0
    for run in markup.runs:
        if run.start > at:
            pieces.append((markup.text[at:run.start], None))
        pieces.append((markup.text[run.start:run.start + run.length], run))
        at = run.start + run.length
    if at < len(markup.text):
        pieces.append((markup.text[at:], None))
    return pieces


_CSS = """body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}
pre{white-space:pre-wrap;font-family:ui-monospace,monospace;font-size:.95rem;line-height:1.5;
background:#fafafa;border:1px solid #ddd;padding:1rem}
.prompt{color:#888}.legend span{display:inline-block;padding:.1rem .5rem;margin-right:.4rem;
font-family:ui-monospace,monospace}blockquote{border-left:4px solid #c9184a;margin:0;padding:.2rem 1rem;
white-space:pre-wrap;font-family:ui-monospace,monospace}"""


def to_html(markup: Markup, *, title: str = "Verbatim copies", prompt: str = "",
            corpus: str = "") -> str:
    """A standalone page: summary, legend, longest copied passage, and the coloured text.
    `prompt` is shown before the text, grey and unmarked (it was not generated)."""
    e = html.escape
    styles = "".join(
        f".c{i}{{background:{colour};{'color:#fff;' if i == 3 else ''}}}"
        for i, (colour, _) in enumerate(LEVELS)
    )
    legend = "".join(
        f'<span class="c{i}">{e(r)} characters</span>'
        for i, r in enumerate(level_ranges(markup.min_run))
    )
    body = []
    for piece, run in _pieces(markup):
        if run is None:
            body.append(e(piece))
        else:
            tip = f"{run.length} characters from {run.source}, offset {run.source_offset:,}"
            body.append(f'<span class="c{level(run.length, markup.min_run)}" title="{e(tip)}">'
                        f"{e(piece)}</span>")
    longest = markup.longest
    if longest is None:
        longest_html = "<p>No passage of the minimum length occurs verbatim in the corpus.</p>"
    else:
        passage = markup.text[longest.start:longest.start + longest.length]
        longest_html = (f"<p>Longest copied passage: {longest.length} characters from "
                        f"<b>{e(longest.source)}</b> (offset {longest.source_offset:,}):</p>"
                        f"<blockquote>{e(passage)}</blockquote>")
    corpus_line = f" in the corpus <b>{e(corpus)}</b>" if corpus else " in the corpus"
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{e(title)}</title><style>{_CSS}{styles}</style></head><body>\n"
        f"<h1>{e(title)}</h1>\n"
        f"<p><b>{markup.copied_share:.1%}</b> of the {len(markup.text):,} generated characters "
        f"({markup.copied_chars:,}) occur verbatim{corpus_line}, in {len(markup.runs)} run(s) of "
        f"at least {markup.min_run} characters.</p>\n"
        f'<p class="legend">Copied run length: {legend}</p>\n{longest_html}\n'
        f'<pre><span class="prompt">{e(prompt)}</span>{"".join(body)}</pre>\n</body></html>\n'
    )


def to_terminal(markup: Markup) -> Text:
    """The text with copied runs highlighted; control characters are made harmless first
    (sanitize keeps one character per character, so run offsets still hold)."""
    text = Text()
    for piece, run in _pieces(markup):
        style = "" if run is None else LEVELS[level(run.length, markup.min_run)][1]
        text.append(sanitize(piece), style=style)
    return text


def terminal_legend(markup: Markup) -> Text:
    legend = Text()
    legend.append("copied runs: ", style="dim")
    for (_, style), label in zip(LEVELS, level_ranges(markup.min_run), strict=True):
        legend.append(f" {label} ", style=style)
        legend.append(" ")
    legend.append("\n" + sanitize(markup.summary()), style="dim")
    return legend
