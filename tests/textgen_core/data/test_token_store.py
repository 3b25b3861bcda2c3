from pathlib import Path

import numpy as np
import pytest

from runtime.errors import TokenizerError
from runtime.tokenizer import CharTokenizer
from textgen_core.data.corpus import resolve_corpus
from textgen_core.data.token_store import load_token_splits
from textgen_core.errors import CorpusError


def test_split_is_first_90_percent_then_last_10(tmp_path: Path) -> None:
    text = "".join(chr(ord("a") + i % 26) for i in range(1000))
    path = tmp_path / "abc.txt"
    path.write_text(text)
    splits = load_token_splits(resolve_corpus(str(path)))
    assert isinstance(splits.tokens, np.memmap)
    assert len(splits.train) == 900 and len(splits.val) == 100
    assert splits.tokenizer.decode(splits.train) == text[:900]
    assert splits.tokenizer.decode(splits.val) == text[900:]


def test_second_load_uses_the_cache_and_a_changed_file_does_not(tmp_path: Path) -> None:
    path = tmp_path / "c.txt"
    path.write_text("hello world " * 20)
    first = load_token_splits(resolve_corpus(str(path)))
    again = load_token_splits(resolve_corpus(str(path)))
    assert again.meta["key"] == first.meta["key"]
    path.write_text("other text! " * 20)
    changed = load_token_splits(resolve_corpus(str(path)))
    assert changed.meta["key"] != first.meta["key"]
    assert changed.tokenizer.decode(changed.tokens) == "other text! " * 20


def test_chunked_encoding_matches_whole_text(tmp_path: Path) -> None:
    text = ("The quick brown fox\n" * 5000) + "\u00e9\u4e2d end"
    path = tmp_path / "big.txt"
    path.write_text(text, encoding="utf-8")
    splits = load_token_splits(resolve_corpus(str(path)))
    assert splits.tokenizer.decode(splits.tokens) == text


def test_empty_corpus(tmp_path: Path) -> None:
    path = tmp_path / "empty.txt"
    path.write_text("")
    with pytest.raises(CorpusError, match="is empty"):
        load_token_splits(resolve_corpus(str(path)))


def test_fine_tune_tokenizer_names_unknown_characters(tmp_path: Path) -> None:
    path = tmp_path / "new.txt"
    path.write_text("abc xyz")
    with pytest.raises(TokenizerError, match="'x', 'y', 'z'"):
        load_token_splits(resolve_corpus(str(path)), CharTokenizer.from_text("abc "))
