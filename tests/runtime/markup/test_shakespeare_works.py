"""runtime/markup/shakespeare_works.py: a passage copied from the built-in Shakespeare corpus is
named by its work, not by the concatenated file's offset."""

from pathlib import Path

import pytest

from runtime.cache_dir import cache_dir
from runtime.markup.copy_index import CopyIndex
from runtime.markup.shakespeare_works import CHARACTERS, LABEL, WORKS, named_source


def test_an_offset_is_named_by_its_work() -> None:
    hamlet = next(start for start, name, _ in WORKS if name == "Hamlet")
    assert named_source(LABEL, CHARACTERS, hamlet + 1234) == ("Hamlet (Shakespeare)", 1234)
    assert named_source(LABEL, CHARACTERS, 0) == ("All's Well That Ends Well (Shakespeare)", 0)
    assert named_source(LABEL, CHARACTERS, CHARACTERS - 1)[0] == "The Winter's Tale (Shakespeare)"
    # another file of that name, or another length: left as it is
    assert named_source(LABEL, 1000, 10) == (LABEL, 10)
    assert named_source("hamlet.txt", CHARACTERS, 10) == ("hamlet.txt", 10)


@pytest.mark.slow
def test_a_copied_passage_names_its_play(tmp_path: Path) -> None:
    # A file of the corpus's name and length whose Hamlet section holds a known line.
    hamlet = next(start for start, name, _ in WORKS if name == "Hamlet")
    line = "To be, or not to be, that is the question"
    text = ("x" * (hamlet + 500) + line).ljust(CHARACTERS, "y")
    corpus = tmp_path / LABEL
    corpus.write_text(text, encoding="utf-8")
    index = CopyIndex.for_files([corpus], [LABEL], "utf-8")
    (run,) = index.mark(f"He said: {line}.", 16).runs
    assert (run.source, run.source_offset) == ("Hamlet (Shakespeare)", 500)


def test_the_table_matches_the_cached_corpus() -> None:
    path = cache_dir() / "corpora" / "shakespeare.txt"
    real = Path.home() / ".cache" / "textgen" / "corpora" / "shakespeare.txt"
    path = path if path.is_file() else real
    if not path.is_file():
        pytest.skip("the shakespeare corpus is not cached here")
    text = path.read_text(encoding="utf-8")
    assert len(text) == CHARACTERS
    for start, _, title in WORKS:
        assert text[start:].startswith(title + "\n"), title
        assert "by William Shakespeare" in text[start:start + len(title) + 40]
