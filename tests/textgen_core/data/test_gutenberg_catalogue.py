"""The Project Gutenberg catalogue against a loopback mirror: search (library and CLI), a
search-driven corpus with its cap, caching and refresh, collection checks, and the one-line
errors of bad queries."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import torch

from textgen_core.corpus import main as corpus_cli
from textgen_core.data.corpus import resolve_corpus
from textgen_core.data.gutenberg_catalogue import (
    DEFAULT_MAX_BOOKS,
    MAX_AGE_S,
    RETRY_AFTER_S,
    Entry,
    Query,
    book_mismatch,
    catalogue_file,
    load_catalogue,
    parse_query,
    search,
    with_max_books,
)
from textgen_core.data.gutenberg_collections import COLLECTIONS, Book
from textgen_core.data.gutenberg_download import RetryPolicy
from textgen_core.errors import CorpusError

FAST = RetryPolicy(attempts=2, backoff_s=0.01, timeout_s=5)

AUSTEN = "Austen, Jane, 1775-1817"
ROWS = [
    (105, "Text", "Persuasion", "en", AUSTEN, "England -- Fiction", "Best Books Ever Listings"),
    (121, "Text", "Northanger Abbey", "en", AUSTEN),
    (158, "Text", "Emma", "en", AUSTEN),
    (768, "Text", "Wuthering Heights", "en", "Brontë, Emily, 1818-1848", "Gothic fiction"),
    (1342, "Text", "Pride and Prejudice", "en", AUSTEN, "Courtship -- Fiction", "Harvard Classics"),
    (9999, "Sound", "Pride and Prejudice (audio)", "en", AUSTEN),
    (20001, "Text", "Orgueil et Préjugés", "fr", AUSTEN + "; Doe, John [Translator]"),
    (30001, "Text", "Sense and Sensibility\nA Novel", "en; fr", AUSTEN),
]


def test_search_matches_every_condition_in_catalogue_order(pg_mirror) -> None:
    pg_mirror.set_catalogue(ROWS)
    catalogue = load_catalogue(pg_mirror.url)
    ids = lambda **kw: [e.id for e in search(catalogue, Query(**kw))]  # noqa: E731
    assert ids(author="austen", language="en") == [105, 121, 158, 1342, 30001]  # no Sound item
    assert ids(author="AUSTEN", language="fr") == [20001, 30001]
    assert ids(author="bronte") == [768]  # accents and case do not matter
    assert ids(title="prejug") == [20001]
    assert ids(subject="harvard") == [1342]  # bookshelves count as subjects
    assert ids(author="Austen", title="emma") == [158]
    assert ids(author="Tolstoy") == []


def test_search_cli_prints_the_table_and_the_corpus_spec(pg_mirror, capsys: pytest.CaptureFixture[str]) -> None:
    pg_mirror.set_catalogue(ROWS)
    assert corpus_cli(["search", "--author", "Austen", "--language", "en",
                       "--gutenberg-mirror", pg_mirror.url]) == 0
    out = capsys.readouterr().out
    for title in ("Persuasion", "Northanger Abbey", "Emma", "Pride and Prejudice"):
        assert title in out
    assert "audio" not in out and "Orgueil" not in out
    assert 'gutenberg:author=Austen,language=en' in " ".join(out.split())
    # the training command keeps the mirror the search used, so it runs as printed
    assert f'--corpus "gutenberg:author=Austen,language=en" --gutenberg-mirror {pg_mirror.url}' in " ".join(out.split())


def test_catalogue_is_cached_refreshed_when_old_and_on_request(pg_mirror, dead_mirror_url: str) -> None:
    pg_mirror.set_catalogue(ROWS)
    load_catalogue(pg_mirror.url)
    assert len(load_catalogue(dead_mirror_url, FAST)) == len(ROWS)  # fresh: no request at all
    assert pg_mirror.requests == ["/cache/epub/feeds/pg_catalog.csv"]
    load_catalogue(pg_mirror.url, refresh=True)
    assert len(pg_mirror.requests) == 2
    meta_path = catalogue_file().with_suffix(".json")
    meta = json.loads(meta_path.read_text())
    assert meta["next_check"] == pytest.approx(time.time() + MAX_AGE_S, abs=60)
    meta_path.write_text(json.dumps({**meta, "next_check": time.time() - 1}))  # a week old
    pg_mirror.set_catalogue(ROWS[:2])
    assert len(load_catalogue(pg_mirror.url)) == 2 and len(pg_mirror.requests) == 3
    # Old and the mirror is down: the cached copy serves, and the next try waits an hour.
    meta_path.write_text(json.dumps({**json.loads(meta_path.read_text()), "next_check": time.time() - 1}))
    assert len(load_catalogue(dead_mirror_url, FAST)) == 2
    assert json.loads(meta_path.read_text())["next_check"] == pytest.approx(time.time() + RETRY_AFTER_S, abs=60)
    with pytest.raises(CorpusError, match="could not download the Project Gutenberg catalogue"):
        load_catalogue(dead_mirror_url, FAST, refresh=True)  # asked for explicitly: an error


def test_search_corpus_downloads_matches_in_catalogue_order_capped(pg_mirror, capsys) -> None:
    pg_mirror.set_catalogue(ROWS)
    for row in ROWS:
        pg_mirror.add_book(row[0], title=row[2].split("\n")[0], author="Jane Austen")
    corpus = resolve_corpus("gutenberg:author=Austen,language=en,max-books=3", gutenberg_mirror=pg_mirror.url)
    assert [p.name for p in corpus.files] == ["pg105.txt", "pg121.txt", "pg158.txt"]
    err = " ".join(capsys.readouterr().err.split())
    assert "5 text ebook(s) match" in err and "first 3" in err and "Northanger Abbey" in err
    assert pg_mirror.book_requests() == [f"/cache/epub/{i}/pg{i}.txt" for i in (105, 121, 158)]
    # The list is printed before downloading (the catalogue is fetched first; the books after).
    assert pg_mirror.requests[0].endswith("pg_catalog.csv")
    again = resolve_corpus("gutenberg:author=Austen,language=en,max-books=3")  # all cached: offline
    assert again.files == corpus.files and capsys.readouterr().err == ""


@pytest.mark.slow
def test_train_on_a_search_with_max_books(pg_mirror, tmp_path: Path) -> None:
    from textgen_core.train import main

    pg_mirror.set_catalogue(ROWS)
    for row in ROWS:
        pg_mirror.add_book(row[0], title=row[2].split("\n")[0], author="Jane Austen")
    out = tmp_path / "austen.pt"
    assert main(["--corpus", "gutenberg:author=Austen,language=en", "--max-books", "2",
                 "--gutenberg-mirror", pg_mirror.url, "--preset", "nano", "--max-iters", "4",
                 "--eval-interval", "2", "--eval-iters", "1", "--device", "cpu", "--sample-tokens", "0",
                 "--out", str(out)]) == 0
    corpus = torch.load(out, weights_only=True)["train_state"]["corpus"]
    assert corpus == "gutenberg:author=Austen,language=en,max-books=2"
    assert pg_mirror.book_requests() == ["/cache/epub/105/pg105.txt", "/cache/epub/121/pg121.txt"]


@pytest.mark.parametrize(("spec", "message"), [
    ("gutenberg:author=Austen,1342", "cannot mix in ebook ids"),
    ("gutenberg:writer=Austen", "unknown search field 'writer'; fields: author, title, language, subject"),
    ("gutenberg:author=Austen,author=Woolf", "gives author twice"),
    ("gutenberg:author=", "author has no value"),
    ("gutenberg:max-books=3", "needs at least one of author, title, language, subject"),
    ("gutenberg:author=Austen,max-books=0", "max-books must be a positive integer"),
    ("gutenberg:author=Austen,max-books=" + "9" * 5000, "max-books must be a positive integer"),
])
def test_bad_queries_are_one_line(spec: str, message: str) -> None:
    with pytest.raises(CorpusError, match=r"^--corpus gutenberg:") as info:
        parse_query(spec)
    assert message in str(info.value) and "\n" not in str(info.value) and len(str(info.value)) < 400


def test_max_books_folds_into_the_recorded_spec() -> None:
    assert with_max_books("gutenberg:author=Austen", None) == "gutenberg:author=Austen"
    assert with_max_books("gutenberg:author=Austen", 5) == "gutenberg:author=Austen,max-books=5"
    assert parse_query("gutenberg:author=Austen").max_books == DEFAULT_MAX_BOOKS
    with pytest.raises(CorpusError, match="--max-books caps a Project Gutenberg search"):
        with_max_books("shakespeare", 5)
    with pytest.raises(CorpusError, match=r"^--max-books must be a positive integer \(at most 999999\), got 0$"):
        with_max_books("gutenberg:author=Austen", 0)
    with pytest.raises(CorpusError, match="already sets max-books"):
        with_max_books("gutenberg:author=Austen,max-books=2", 5)


def test_no_match_and_a_catalogue_that_is_not_csv(pg_mirror, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    from textgen_core.train import main

    flags = ["--gutenberg-mirror", pg_mirror.url, "--preset", "nano", "--device", "cpu",
             "--out", str(tmp_path / "m.pt")]
    pg_mirror.set_catalogue(ROWS)
    assert main(["--corpus", "gutenberg:author=Tolstoy", *flags]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: no text ebook in the Project Gutenberg catalogue matches author=Tolstoy")
    assert "\n" not in err

    catalogue_file().unlink()
    pg_mirror.serve_catalogue(b"<!DOCTYPE html><html><body>Not here</body></html>", content_type="text/html")
    assert corpus_cli(["search", "--author", "Austen", "--refresh", "--gutenberg-mirror", pg_mirror.url]) == 1
    err = capsys.readouterr().err.strip()
    assert "pg_catalog.csv is not Project Gutenberg's CSV catalogue (its first line is" in err
    assert "\n" not in err and not catalogue_file().exists()
    pg_mirror.serve_catalogue(b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe")
    assert corpus_cli(["search", "--author", "Austen", "--gutenberg-mirror", pg_mirror.url]) == 1
    assert "is not Project Gutenberg's CSV catalogue (it is not UTF-8 text)" in capsys.readouterr().err
    assert corpus_cli(["search", "--gutenberg-mirror", pg_mirror.url]) == 1
    assert "search needs at least one of --author" in capsys.readouterr().err


def women_writers_rows() -> list[tuple]:
    authors = {"Jane Austen": AUSTEN, "Virginia Woolf": "Woolf, Virginia, 1882-1941",
               "Emily Brontë": "Brontë, Emily, 1818-1848"}
    return [(b.id, "Text", b.title + "\nA Novel", "en", authors[b.author]) for b in COLLECTIONS["women-writers"]]


def test_collection_is_checked_against_a_cached_catalogue(pg_mirror, capsys: pytest.CaptureFixture[str]) -> None:
    for book in COLLECTIONS["women-writers"]:
        pg_mirror.add_book(book.id, title=book.title)
    rows = women_writers_rows()
    pg_mirror.set_catalogue(rows)
    assert corpus_cli(["check", "women-writers", "--gutenberg-mirror", pg_mirror.url]) == 0
    assert len(resolve_corpus("women-writers", gutenberg_mirror=pg_mirror.url).files) == 12

    wrong = [(r[0], "Text", "The Adventures of Tom Sawyer", "en", "Twain, Mark, 1835-1910")
             if r[0] == 946 else r for r in rows]
    pg_mirror.set_catalogue(wrong)
    assert corpus_cli(["check", "women-writers", "--refresh", "--gutenberg-mirror", pg_mirror.url]) == 1
    err = capsys.readouterr().err.strip()
    assert "collection women-writers: book 946, 'Lady Susan' by Jane Austen, is 'The Adventures of Tom " \
           "Sawyer' by Twain, Mark, 1835-1910 in the catalogue" in err
    assert "\n" not in err
    with pytest.raises(CorpusError, match="collection women-writers: book 946, 'Lady Susan'"):
        resolve_corpus("women-writers", gutenberg_mirror=pg_mirror.url)


def test_collection_without_a_cached_catalogue_is_not_checked(pg_mirror) -> None:
    for book in COLLECTIONS["women-writers"]:
        pg_mirror.add_book(book.id)
    assert len(resolve_corpus("women-writers", gutenberg_mirror=pg_mirror.url).files) == 12
    assert not any("feeds" in r for r in pg_mirror.requests)


@pytest.mark.parametrize(("book", "catalogue_title", "authors", "agrees"), [
    (Book(1, "Hegel's Lectures on the History of Philosophy, Vol. 3 of 3", "G. W. F. Hegel"),
     "Hegel's Lectures on the History of Philosophy: Volume 3 (of 3)",
     "Hegel, Georg Wilhelm Friedrich, 1770-1831; Haldane, Elizabeth Sanderson [Translator]", True),
    (Book(1, "Hegel's Lectures on the History of Philosophy, Vol. 3 of 3", "G. W. F. Hegel"),
     "Hegel's Lectures on the History of Philosophy: Volume 2 (of 3)",
     "Hegel, Georg Wilhelm Friedrich, 1770-1831", False),
    (Book(1, "The Will to Power, Books III and IV", "Friedrich Nietzsche"),
     "The Will to Power, Vol. II (of 2)\nAn Attempted Transvaluation of All Values. Book III and IV",
     "Nietzsche, Friedrich Wilhelm, 1844-1900", True),
    (Book(1, "Wuthering Heights", "Emily Brontë"), "Wuthering Heights", "Bronte, Emily", True),
    (Book(1, "Emma", "Jane Austen"), "Emma", "Woolf, Virginia", False),
])
def test_book_matching_rule(book: Book, catalogue_title: str, authors: str, agrees: bool) -> None:
    entry = Entry(book.id, "Text", catalogue_title, ("en",), authors, "", "")
    assert (book_mismatch(book, entry) is None) is agrees
    assert book_mismatch(book, None) == "is not in the catalogue"
