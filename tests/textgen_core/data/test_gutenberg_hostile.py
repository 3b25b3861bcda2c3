"""Hostile Project Gutenberg mirrors and input (issue 16, item 14): an HTML page served with
status 200, a server dripping one byte at a time, a 5,000-digit id, a book with a START but no
END marker. Each ends in one CorpusError line, caches nothing, and never hangs."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from textgen_core.data.corpus import resolve_corpus
from textgen_core.data.gutenberg import RetryPolicy, book_ids, book_paths
from textgen_core.errors import CorpusError

HANG_GUARD_S = 60  # far above the deadlines below; only there so a regression fails, not hangs


def raises_within(fn: Callable[[], object]) -> CorpusError:
    """Run `fn` in a thread; it must raise CorpusError and must not hang."""
    outcome: dict[str, BaseException | None] = {"error": None}

    def target() -> None:
        try:
            fn()
        except BaseException as exc:  # handed to the test thread
            outcome["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(HANG_GUARD_S)
    assert not thread.is_alive(), "hung"
    error = outcome["error"]
    assert isinstance(error, CorpusError), repr(error)
    assert "\n" not in str(error)
    return error


def cached_files(tmp_path: Path) -> list[Path]:
    root = tmp_path / "cache" / "gutenberg"
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def test_html_page_with_status_200_is_refused_and_not_cached(pg_mirror, tmp_path: Path) -> None:
    page = b"<!DOCTYPE html>\n<html><body><h1>Too many requests</h1>" + b"x" * 2000 + b"</body></html>"
    pg_mirror.serve_book(77, page, content_type="text/html")
    error = raises_within(lambda: book_paths("gutenberg:77", pg_mirror.url))
    assert "sent an HTML page for Project Gutenberg book 77" in str(error)
    assert cached_files(tmp_path) == []
    # The poison never reached the cache: once the mirror serves the book, the next run uses it.
    pg_mirror.add_book(77)
    (path,) = book_paths("gutenberg:77", pg_mirror.url)
    assert "quiet morning in book 77" in path.read_text(encoding="utf-8")


def test_a_bad_raw_file_already_in_the_cache_is_fetched_again(pg_mirror, tmp_path: Path) -> None:
    raw = tmp_path / "cache" / "gutenberg" / "raw" / "pg78.txt"
    raw.parent.mkdir(parents=True)
    raw.write_bytes(b"<html><body>Service unavailable</body></html>")  # cached by an older version
    pg_mirror.add_book(78)
    (path,) = book_paths("gutenberg:78", pg_mirror.url)
    assert "quiet morning in book 78" in path.read_text(encoding="utf-8")
    assert pg_mirror.book_requests() == ["/cache/epub/78/pg78.txt"]
    assert raw.read_bytes().startswith(b"The Project Gutenberg eBook")


@pytest.mark.parametrize(("attempts", "drip_headers"), [(1, True), (2, True), (1, False)])
def test_a_dripping_server_meets_the_deadline_for_the_whole_transfer(
    pg_mirror, tmp_path: Path, attempts: int, drip_headers: bool
) -> None:
    # One byte every 50 ms: a 20 KB body would take ~17 minutes; each attempt is cut at 0.5 s
    # although no single read ever waits longer than the socket timeout.
    pg_mirror.serve_book(79, b"z" * 20_000, drip_s=0.05, drip_headers=drip_headers)
    policy = RetryPolicy(attempts=attempts, backoff_s=0.01, timeout_s=0.5)
    error = raises_within(lambda: book_paths("gutenberg:79", pg_mirror.url, retry=policy))
    assert "could not download Project Gutenberg book 79" in str(error)
    assert "took longer than 0.5 s" in str(error) and f"{attempts} attempt(s)" in str(error)
    assert len(pg_mirror.book_requests()) == attempts
    assert cached_files(tmp_path) == []


def test_a_dripping_server_that_would_finish_in_time_is_read_whole(pg_mirror) -> None:
    data = pg_mirror.add_book(80)
    pg_mirror.serve_book(80, data, drip_s=0.0001)
    (path,) = book_paths("gutenberg:80", pg_mirror.url, retry=RetryPolicy(attempts=1, timeout_s=30))
    assert "quiet morning in book 80" in path.read_text(encoding="utf-8")


def test_a_5000_digit_id_is_one_short_line() -> None:
    spec = "gutenberg:" + "9" * 5000
    with pytest.raises(CorpusError) as info:
        book_ids(spec)
    message = str(info.value)
    assert "Gutenberg book ids must be positive integers" in message and "at most 9 digits" in message
    assert len(message) < 400


def test_train_cli_with_a_5000_digit_id(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    from textgen_core.train import main

    monkeypatch.setenv("TEXTGEN_CACHE", str(tmp_path / "cache"))
    code = main(["--corpus", "gutenberg:1" + "0" * 5000, "--preset", "nano", "--device", "cpu",
                 "--out", str(tmp_path / "m.pt")])
    err = capsys.readouterr().err.strip()
    assert code == 1 and err.startswith("error: ") and "\n" not in err and "Traceback" not in err


def test_start_without_end_marker_is_refused_not_trained_on_with_its_licence(pg_mirror, tmp_path: Path) -> None:
    pg_mirror.add_book(81, end=False)
    error = raises_within(lambda: resolve_corpus("gutenberg:81", gutenberg_mirror=pg_mirror.url))
    assert "book 81 has a '*** START OF THE PROJECT GUTENBERG EBOOK' line but no '*** END" in str(error)
    assert cached_files(tmp_path) == []



def test_a_redirect_to_another_scheme_is_refused_and_http_ones_followed(pg_mirror, dead_mirror_url: str,
                                                                        tmp_path: Path) -> None:
    # issue 27, class 7: urllib follows a redirect to ftp://, whose transfer no deadline covers
    port = dead_mirror_url.rsplit(":", 1)[1].strip("/")
    pg_mirror.serve_book(81, b"moved", status=302, headers={"Location": f"ftp://127.0.0.1:{port}/pg81.txt"})
    error = raises_within(lambda: book_paths("gutenberg:81", pg_mirror.url,
                                             retry=RetryPolicy(attempts=2, backoff_s=0.01, timeout_s=5)))
    assert "redirected" in str(error) and "not an http:// or https:// URL" in str(error)
    assert len(pg_mirror.book_requests()) == 1  # refused, not retried
    assert cached_files(tmp_path) == []
    data = pg_mirror.add_book(82)
    pg_mirror.routes["/elsewhere/82.txt"] = pg_mirror.routes.pop("/cache/epub/82/pg82.txt")
    pg_mirror.serve_book(82, b"moved", status=302, headers={"Location": "/elsewhere/82.txt"})
    (path,) = book_paths("gutenberg:82", pg_mirror.url)
    assert "quiet morning in book 82" in path.read_text(encoding="utf-8") and data


MARKUP_TITLES = [
    (501, "Text", "Pride [/bold] and [bold]Prejudice", "en", "Austen, Jane"),
    (502, "Text", "[link=https://evil.example/]Emma[/link]", "en", "Austen, Jane"),
    (503, "Text", "Persuasion \x1b]8;;https://evil.example/\x07click\x1b]8;;\x07 {0} {task}", "en",
     "Austen, [red]Jane"),
]


def test_catalogue_titles_with_markup_and_escapes_are_shown_as_plain_text(
        pg_mirror, capsys: pytest.CaptureFixture[str]) -> None:
    # issue 27, class 4: a title is text to show, never rich markup or terminal escapes
    from textgen_core.corpus import main as corpus_cli

    pg_mirror.set_catalogue(MARKUP_TITLES)
    assert corpus_cli(["search", "--author", "Austen", "--gutenberg-mirror", pg_mirror.url]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "Pride [/bold] and [bold]Prejudice" in out
    assert "[link=https://evil.example/]Emma[/link]" in out
    assert "Austen, [red]Jane" in out
    assert "\x1b" not in out and "\x07" not in out


def test_training_on_a_search_with_markup_titles_lists_them_plainly(
        pg_mirror, capsys: pytest.CaptureFixture[str]) -> None:
    from textgen_core.data.gutenberg import book_paths as paths

    pg_mirror.set_catalogue(MARKUP_TITLES)
    for book_id, *_ in MARKUP_TITLES:
        pg_mirror.add_book(book_id, title="Tale")
    assert len(paths("gutenberg:author=Austen", pg_mirror.url)) == 3
    err = " ".join(capsys.readouterr().err.split())
    assert "Pride [/bold] and [bold]Prejudice" in err and "\x1b" not in err
