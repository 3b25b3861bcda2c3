"""HTML output escapes everything that came from the model, the corpus or the user; terminal
output is sanitized and keeps the text."""

from __future__ import annotations

from runtime.markup.copy_index import CopyIndex
from runtime.markup.render import level, terminal_legend, to_html, to_terminal

CORPUS = 'He wrote <script>alert("x")</script> & left the room quietly.\n'


def test_html_is_escaped_and_complete() -> None:
    index = CopyIndex.from_texts([('<img src=x onerror="boom">.txt', CORPUS)])
    text = 'zz<script>alert("x")</script> & left the roomqq <b>not copied</b>'
    markup = index.mark(text, min_run=10)
    page = to_html(markup, prompt="<i>prompt</i>", corpus="<evil>")
    assert "<script>" not in page and "<b>not" not in page and "<i>" not in page and "<img" not in page
    assert "&lt;b&gt;not copied&lt;/b&gt;" in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; left the room" in page
    assert "&lt;img src=x onerror=&quot;boom&quot;&gt;.txt" in page  # the source label, escaped
    assert "&lt;i&gt;prompt&lt;/i&gt;" in page and "&lt;evil&gt;" in page
    assert f"{markup.copied_share:.1%}" in page and "Longest copied passage: 43 characters" in page
    for label in ("10-19 characters", "20-39 characters", "40-79 characters", "80+ characters"):
        assert label in page
    assert page.count('<span class="c') == len(markup.runs) + 4  # runs plus the legend


def test_levels_grow_with_run_length() -> None:
    assert [level(n, 10) for n in (10, 19, 20, 39, 40, 79, 80, 500)] == [0, 0, 1, 1, 2, 2, 3, 3]


def test_terminal_text_is_sanitized_and_keeps_offsets() -> None:
    index = CopyIndex.from_texts([("c.txt", "a quiet house by the river\n")])
    text = "\x1b[31m a quiet house by\u202e the river"
    markup = index.mark(text, min_run=5)
    rendered = to_terminal(markup)
    assert "\x1b" not in rendered.plain and "\u202e" not in rendered.plain
    assert len(rendered.plain) == len(text)
    assert rendered.spans and "occur verbatim" in terminal_legend(markup).plain
