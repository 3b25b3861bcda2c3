"""Verbatim-copy markup: which passages of a text occur word for word in a corpus (numpy only).

    from runtime.markup import CopyIndex
    index = CopyIndex.from_texts([("hamlet.txt", corpus_text)])
    markup = index.mark(generated_text, min_run=12)
    markup.runs, markup.copied_share, markup.longest
"""

from runtime.markup.copy_index import DEFAULT_MIN_RUN, CopyIndex, Markup, Run, Source

__all__ = ["DEFAULT_MIN_RUN", "CopyIndex", "Markup", "Run", "Source"]
