"""The corpus's one streaming pass (issue 16, items 8, 9 and 15): every byte validated, a file
that changes while it is read or tokenized is an error (and the token cache never holds a file
that disagrees with its sidecar), only regular files are opened, and the corpus fingerprint."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

import textgen_core.data.token_store as token_store
from textgen_core.data.corpus import (
    CHUNK_BYTES,
    Corpus,
    corpus_fingerprint,
    iter_corpus_text,
    iter_file_text,
    resolve_corpus,
)
from textgen_core.data.sentences import load_sentences
from textgen_core.data.token_store import load_token_splits
from textgen_core.errors import CorpusError

HANG_GUARD_S = 60


def finishes(fn: Callable[[], object]) -> BaseException | None:
    """Run `fn` in a thread under a hang guard; return what it raised."""
    outcome: dict[str, BaseException | None] = {"error": None}

    def target() -> None:
        try:
            fn()
        except BaseException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(HANG_GUARD_S)
    assert not thread.is_alive(), "hung"
    return outcome["error"]


def read_all(corpus: Corpus) -> str:
    return "".join(chunk for _, chunk in iter_corpus_text(corpus))


def test_a_nul_byte_anywhere_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "late.txt"
    path.write_bytes(b"plain text " * 2000 + b"\x00" + b" more text")  # the NUL is past 8 KB
    with pytest.raises(CorpusError, match="looks like a binary file"):
        read_all(resolve_corpus(str(path)))
    path.write_bytes(b"a" * (CHUNK_BYTES + 5) + b"\x00")  # in a later block of the pass
    with pytest.raises(CorpusError, match="looks like a binary file"):
        read_all(resolve_corpus(str(path)))
    with pytest.raises(CorpusError, match="looks like a binary file"):
        load_token_splits(resolve_corpus(str(path)))


def test_utf16_text_with_nul_bytes_is_fine_when_the_encoding_is_given(tmp_path: Path) -> None:
    path = tmp_path / "wide.txt"
    path.write_bytes("wide text\r\nline two\n".encode("utf-16"))
    assert read_all(resolve_corpus(str(path), encoding="utf-16")) == "wide text\nline two\n"
    path.write_bytes("nul \x00 inside".encode("utf-16"))
    with pytest.raises(CorpusError, match="looks like a binary file"):
        read_all(resolve_corpus(str(path), encoding="utf-16"))


def test_newlines_are_normalised_across_block_boundaries(tmp_path: Path) -> None:
    path = tmp_path / "crlf.txt"
    path.write_bytes(b"x" * (CHUNK_BYTES - 1) + b"\r\n" + "é\r".encode() + b"end")
    assert read_all(resolve_corpus(str(path))) == "x" * (CHUNK_BYTES - 1) + "\né\nend"


def test_undecodable_byte_names_its_offset(tmp_path: Path) -> None:
    path = tmp_path / "bad.txt"
    path.write_bytes(b"a" * (CHUNK_BYTES + 10) + b"\xff")
    with pytest.raises(CorpusError, match=f"undecodable byte at offset {CHUNK_BYTES + 10:,}"):
        read_all(resolve_corpus(str(path)))


def test_a_file_that_grows_while_it_is_read_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "growing.txt"
    path.write_bytes(b"abc " * (CHUNK_BYTES // 2))  # two blocks
    chunks = iter_file_text(resolve_corpus(str(path)))
    next(chunks)
    with path.open("ab") as f:
        f.write(b"new text \xe2\x82\xac")
    with pytest.raises(CorpusError, match=r"growing\.txt changed while it was being read; run again"):
        list(chunks)


def _edit_after_first_pass(monkeypatch: pytest.MonkeyPatch, edit: Callable[[], None]) -> None:
    """Let the token store's first pass finish for real, then edit the corpus before the second
    (the real reader is called; only the moment of the edit is arranged)."""
    real = token_store.iter_corpus_text
    passes = {"n": 0}

    def reader(corpus: Corpus, digests: list | None = None) -> Iterator[tuple[Path, str]]:
        passes["n"] += 1
        if passes["n"] == 2:
            edit()
        yield from real(corpus, digests)

    monkeypatch.setattr(token_store, "iter_corpus_text", reader)


@pytest.mark.parametrize("change", ["new characters", "known characters", "same size and mtime"])
def test_a_corpus_edited_between_the_two_passes_is_refused_and_nothing_is_cached(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, change: str
) -> None:
    monkeypatch.setenv("TEXTGEN_CACHE", str(tmp_path / "cache"))
    path = tmp_path / "story.txt"
    path.write_text("abc abc abc\n" * 50)

    def edit() -> None:
        st = path.stat()
        if change == "new characters":
            path.write_text("xyz€ " * 200)
        elif change == "known characters":
            path.write_text("abc " * 400)
        else:
            path.write_text("cba cba cba\n" * 50)
            os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))

    _edit_after_first_pass(monkeypatch, edit)
    error = finishes(lambda: load_token_splits(resolve_corpus(str(path))))
    assert isinstance(error, CorpusError), repr(error)  # never IndexError, never silent token 0s
    assert "story.txt changed while it was being read" in str(error)
    assert list((tmp_path / "cache" / "tokens").glob("*")) == []


def test_token_file_that_disagrees_with_its_sidecar_is_rebuilt(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEXTGEN_CACHE", str(tmp_path / "cache"))
    path = tmp_path / "c.txt"
    path.write_text("hello world " * 50)
    first = load_token_splits(resolve_corpus(str(path)))
    (bin_path,) = (tmp_path / "cache" / "tokens").glob("*.bin")
    bin_path.write_bytes(bin_path.read_bytes()[:-10])  # torn by something outside our control
    again = load_token_splits(resolve_corpus(str(path)))
    assert len(again.tokens) == first.meta["num_tokens"] == 600
    assert again.tokenizer.decode(again.tokens) == "hello world " * 50


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this system")
def test_a_fifo_is_refused_without_hanging(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from textgen_core.train import main

    fifo = tmp_path / "pipe.txt"
    os.mkfifo(fifo)
    error = finishes(lambda: resolve_corpus(str(fifo)))
    assert isinstance(error, CorpusError) and "pipe.txt is not a regular file (it is a FIFO)" in str(error)
    # A FIFO swapped in after the corpus was resolved is refused when it is opened.
    error = finishes(lambda: read_all(Corpus("swapped", (fifo,))))
    assert isinstance(error, CorpusError) and "is not a regular file (it is a FIFO)" in str(error)
    # In a folder it is not a .txt file to read.
    (tmp_path / "real.txt").write_text("real text\n")
    assert read_all(resolve_corpus(str(tmp_path))) == "real text\n"
    code: dict[str, int] = {}
    error = finishes(lambda: code.setdefault("rc", main(
        ["--corpus", str(fifo), "--preset", "nano", "--device", "cpu", "--out", str(tmp_path / "m.pt")])))
    assert error is None and code["rc"] == 1
    err = capsys.readouterr().err.strip()
    assert "is not a regular file (it is a FIFO)" in err and "\n" not in err


def test_a_device_is_refused(tmp_path: Path) -> None:
    if not Path("/dev/zero").exists():
        pytest.skip("no /dev/zero")
    error = finishes(lambda: resolve_corpus("/dev/zero"))
    assert isinstance(error, CorpusError) and "it is a character device" in str(error)


def test_fingerprint_follows_content_not_path_or_mtime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEXTGEN_CACHE", str(tmp_path / "cache"))
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / "x.txt").write_text("one two three. four five six.\n" * 20)
    (b / "x.txt").write_text("one two three. four five six.\n" * 20)
    fa, fb = corpus_fingerprint(resolve_corpus(str(a))), corpus_fingerprint(resolve_corpus(str(b)))
    assert fa == fb and fa.startswith("sha256:")
    os.utime(b / "x.txt", (1, 1))
    assert corpus_fingerprint(resolve_corpus(str(b))) == fa
    assert corpus_fingerprint(resolve_corpus(str(b), encoding="latin-1")) != fa
    # The token store and the GAN's sentences record the same fingerprint, for free.
    assert load_token_splits(resolve_corpus(str(a))).meta["fingerprint"] == fa
    assert load_sentences(resolve_corpus(str(a)), seq_len=8, vocab_size=20, min_train=1).fingerprint == fa
    (b / "x.txt").write_text("one two three. four five six!\n" * 20)
    assert corpus_fingerprint(resolve_corpus(str(b))) != fa
    assert isinstance(load_token_splits(resolve_corpus(str(b))).tokens, np.memmap)
