"""Gutenberg corpora against a loopback mirror (never the internet): cleaning, caching, retries,
offline errors, named collections, and training end to end."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch

from textgen_core.data.corpus import resolve_corpus
from textgen_core.data.gutenberg import (
    DEFAULT_MIRROR,
    MIRROR_ENV,
    RetryPolicy,
    book_ids,
    book_paths,
    resolve_mirror,
)
from textgen_core.data.gutenberg_clean import strip_gutenberg
from textgen_core.data.gutenberg_collections import COLLECTIONS
from textgen_core.errors import CorpusError

FAST = RetryPolicy(attempts=3, backoff_s=0.01, timeout_s=5)
WORDS = ("the", "quiet", "house", "stood", "by", "a", "river", "and", "every", "morning", "she",
         "walked", "to", "mill", "where", "letters", "waited", "for", "her", "beneath", "stone",
         "that", "nobody", "else", "had", "ever", "lifted")


def book_body(book_id: int) -> str:
    rng = random.Random(book_id)
    paragraphs = []
    for _ in range(40):
        sentence = " ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 20)))
        paragraphs.append(sentence.capitalize() + ".")
    return f"CHAPTER I. Book {book_id}\n\n" + "\n\n".join(paragraphs) + "\n"


def raw_book(book_id: int) -> bytes:
    """A file shaped like gutenberg.org's cache/epub/{id}/pg{id}.txt: BOM, CRLF, header,
    credits, body, END marker and licence."""
    header = (f"The Project Gutenberg eBook of Tale {book_id}\n\n"
              "This ebook is for the use of anyone anywhere in the United States and most other "
              "parts of the world at no cost.\n\n"
              f"Title: Tale Number {book_id}\n\nAuthor: Ann Example\n\n"
              "Release date: June 1, 1998 [eBook #{book_id}]\n\nLanguage: English\n\n"
              f"*** START OF THE PROJECT GUTENBERG EBOOK TALE {book_id} ***\n\n\n"
              "Produced by Anonymous Volunteers, and David Widger\n\n")
    footer = (f"\n\n*** END OF THE PROJECT GUTENBERG EBOOK TALE {book_id} ***\n\n"
              "Updated editions will replace the previous one--the old editions will be renamed.\n"
              "START: FULL LICENSE\nTHE FULL PROJECT GUTENBERG LICENSE\n" + "Section 1. " * 50)
    text = header + book_body(book_id) + footer
    return "\ufeff".encode() + text.replace("\n", "\r\n").encode("utf-8")


@dataclass
class Mirror:
    url: str
    requests: list[str] = field(default_factory=list)
    fail_next: int = 0  # answer this many requests with HTTP 500 first


@pytest.fixture
def mirror(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Mirror]:
    monkeypatch.setenv("TEXTGEN_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv(MIRROR_ENV, raising=False)
    state = Mirror(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.requests.append(self.path)
            if state.fail_next > 0:
                state.fail_next -= 1
                self.send_error(500)
                return
            parts = self.path.strip("/").split("/")
            if len(parts) == 4 and parts[:2] == ["cache", "epub"] and parts[3] == f"pg{parts[2]}.txt" \
                    and parts[2].isdigit() and int(parts[2]) != 404404:
                body = raw_book(int(parts[2]))
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            else:
                self.send_error(404)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/"
    yield state
    server.shutdown()
    server.server_close()


def dead_mirror() -> str:
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    port = server.server_address[1]
    server.server_close()  # nothing listens there any more
    return f"http://127.0.0.1:{port}/"


def test_book_is_cleaned_cached_and_fetched_once(mirror: Mirror) -> None:
    corpus = resolve_corpus("gutenberg:1342", gutenberg_mirror=mirror.url)
    (path,) = corpus.files
    text = path.read_text(encoding="utf-8")
    assert text == book_body(1342)
    assert "\r" not in text and "Gutenberg" not in text and "Produced by" not in text
    assert mirror.requests == ["/cache/epub/1342/pg1342.txt"]
    again = resolve_corpus("gutenberg:1342", gutenberg_mirror=dead_mirror())
    assert again.files == corpus.files and len(mirror.requests) == 1


def test_books_keep_the_given_order_and_collections_resolve(mirror: Mirror) -> None:
    corpus = resolve_corpus("gutenberg:158,1342", gutenberg_mirror=mirror.url)
    assert [p.name for p in corpus.files] == ["pg158.txt", "pg1342.txt"]
    women = resolve_corpus("women-writers", gutenberg_mirror=mirror.url)
    assert [p.name for p in women.files] == [f"pg{b.id}.txt" for b in COLLECTIONS["women-writers"]]
    assert len(mirror.requests) == len(COLLECTIONS["women-writers"])  # 158 and 1342 were cached


def test_transient_server_errors_are_retried(mirror: Mirror) -> None:
    mirror.fail_next = 2
    (path,) = book_paths("gutenberg:7", mirror.url, retry=FAST)
    assert path.read_text(encoding="utf-8") == book_body(7)
    assert len(mirror.requests) == 3


def test_missing_book_is_not_retried(mirror: Mirror) -> None:
    with pytest.raises(CorpusError, match=r"book 404404 is not available from the mirror .*HTTP 404"):
        book_paths("gutenberg:404404", mirror.url, retry=FAST)
    assert len(mirror.requests) == 1


def test_offline_with_an_empty_cache_names_the_book_and_mirror(mirror: Mirror) -> None:
    url = dead_mirror()
    with pytest.raises(CorpusError) as info:
        book_paths("gutenberg:99", url, retry=FAST)
    message = str(info.value)
    assert "book 99" in message and url in message and "not cached" in message and "\n" not in message


def test_mirror_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(MIRROR_ENV, raising=False)
    assert resolve_mirror() == DEFAULT_MIRROR
    monkeypatch.setenv(MIRROR_ENV, "http://mirror.example/gutenberg")
    assert resolve_mirror() == "http://mirror.example/gutenberg/"
    assert resolve_mirror("https://flag.example/") == "https://flag.example/"
    with pytest.raises(CorpusError, match="--gutenberg-mirror must be"):
        resolve_mirror("ftp://old.example/")


@pytest.mark.parametrize("spec", ["gutenberg:", "gutenberg:12,x", "gutenberg:0", "gutenberg:5,5"])
def test_bad_book_ids(spec: str) -> None:
    with pytest.raises(CorpusError, match=r"--corpus gutenberg:"):
        book_ids(spec)


def test_cleaning_rules_for_older_files() -> None:
    raw = ("Title: Old\r\n*** START OF THIS PROJECT GUTENBERG EBOOK OLD ***\r\n\r\n"
           "[Transcriber's Note: spelling kept.]\r\n\r\nThe tale.\r\nIt ends.\r\n\r\n"
           "End of the Project Gutenberg EBook of Old\r\n*** END OF THIS PROJECT GUTENBERG EBOOK OLD ***\r\n")
    assert strip_gutenberg(raw) == "The tale.\nIt ends.\n"
    two_credits = ("*** START OF THE PROJECT GUTENBERG EBOOK X ***\n\nProduced by A\nand B\n\n"
                   "[Transcriber's note: kept]\n\n\nBody.\n\nProduced by nobody, said the book.\n"
                   "*** END OF THE PROJECT GUTENBERG EBOOK X ***\nlicence")
    assert strip_gutenberg(two_credits) == "Body.\n\nProduced by nobody, said the book.\n"
    with pytest.raises(CorpusError, match="no '\\*\\*\\* START OF THE PROJECT GUTENBERG EBOOK' line"):
        strip_gutenberg("just some text\n")


def test_train_end_to_end_from_a_loopback_mirror(mirror: Mirror, tmp_path: Path) -> None:
    from textgen_core.train import main

    out = tmp_path / "m.pt"
    args = ["--corpus", "gutenberg:11", "--gutenberg-mirror", mirror.url, "--preset", "nano",
            "--max-iters", "20", "--device", "cpu", "--sample-tokens", "0", "--out", str(out)]
    assert main(args) == 0
    assert torch.load(out, weights_only=True)["train_state"]["corpus"] == "gutenberg:11"
    assert len(mirror.requests) == 1
    from textgen_core.evaluate import main as evaluate

    # A second run reads the cache only: even a mirror that is down does not matter.
    assert evaluate([str(out), "--corpus", "gutenberg:11", "--gutenberg-mirror", dead_mirror(),
                     "--device", "cpu", "--max-tokens", "200"]) == 0
    assert len(mirror.requests) == 1
    # The markup names the book by the title in its Gutenberg header.
    from textgen_core.markup import main as markup

    text = tmp_path / "gen.txt"
    text.write_text("XYZ" + book_body(11)[200:300] + "XYZ", encoding="utf-8")
    assert markup(["--corpus", "gutenberg:11", "--text", str(text), "--html", str(tmp_path / "m.html")]) == 0
    assert "100 characters from Tale Number 11 (Gutenberg #11)" in (tmp_path / "m.html").read_text(encoding="utf-8")
    assert len(mirror.requests) == 1


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--corpus", "gutenberg:12,x"], "--corpus gutenberg:12,x: Gutenberg book ids must be positive integers"),
        (["--corpus", "gutenberg:12", "--gutenberg-mirror", "ftp://old.example/"],
         "--gutenberg-mirror must be an http://, https:// or file:// URL"),
    ],
)
def test_train_cli_bad_gutenberg_input_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str], flags: list[str],
                                                   message: str) -> None:
    from textgen_core.train import main

    monkeypatch.setenv("TEXTGEN_CACHE", str(tmp_path / "cache"))
    assert main([*flags, "--preset", "nano", "--device", "cpu", "--out", str(tmp_path / "m.pt")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and "\n" not in err
    assert not (tmp_path / "m.pt").exists()
