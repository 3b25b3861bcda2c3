from pathlib import Path

import pytest

from textgen_core.data.corpus import iter_corpus_text, resolve_corpus
from textgen_core.errors import CorpusError


def read_all(spec: str, encoding: str | None = None) -> str:
    return "".join(chunk for _, chunk in iter_corpus_text(resolve_corpus(spec, encoding)))


def test_folder_is_read_in_sorted_order_with_normalised_newlines(tmp_path: Path) -> None:
    (tmp_path / "b.txt").write_bytes(b"second\r\n")
    (tmp_path / "a.txt").write_bytes(b"first\r\n")
    (tmp_path / "skip.md").write_text("not a corpus file")
    assert read_all(str(tmp_path)) == "first\nsecond\n"


def test_missing_path_names_the_choices(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match=r"corpus not found: .*shakespeare"):
        resolve_corpus(str(tmp_path / "nope.txt"))


def test_folder_without_text_files(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match=r"holds no \.txt files"):
        resolve_corpus(str(tmp_path))


def test_binary_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "image.txt"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    with pytest.raises(CorpusError, match="binary"):
        read_all(str(path))


def test_undecodable_text_suggests_encoding(tmp_path: Path) -> None:
    path = tmp_path / "latin.txt"
    path.write_bytes("caf\u00e9 cr\u00e8me".encode("latin-1"))
    with pytest.raises(CorpusError, match=r"not valid utf-8.*--encoding"):
        read_all(str(path))
    assert read_all(str(path), encoding="latin-1") == "caf\u00e9 cr\u00e8me"


def test_unknown_encoding_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="--encoding 'klingon'"):
        resolve_corpus(str(tmp_path), encoding="klingon")
