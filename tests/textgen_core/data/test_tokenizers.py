"""Building tokenizers from a corpus: settings checked in one line, cuts that no kind can see,
and token arrays of every kind (uint32 above 65,535 tokens)."""

import random
from pathlib import Path

import numpy as np
import pytest

from runtime.tokenizer import CharTokenizer
from textgen_core.data.corpus import resolve_corpus
from textgen_core.data.token_store import load_token_splits
from textgen_core.data.tokenizers import TokenizerSpec, build_tokenizer, segments
from textgen_core.errors import ConfigError

TEXT = ("KING RICHARD III:\nNow is the winter of our discontent\nMade glorious summer by this sun of "
        "York;\n\n  And all the clouds that lour'd upon our house\n\tIn the deep bosom -- of the "
        "ocean buried. café 😀\n") * 40


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (dict(kind="sentencepiece"), "--tokenizer 'sentencepiece' is unknown"),
        (dict(kind="word", vocab_size=2), "needs at least 3"),
        (dict(kind="bpe", vocab_size=100), "needs at least 257"),
        (dict(kind="char", vocab_size=100), "applies to --tokenizer word and bpe"),
    ],
)
def test_bad_settings_are_one_line_errors(spec: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        TokenizerSpec(**spec)


@pytest.mark.parametrize("kind", ["word", "bpe"])
def test_segments_encode_exactly_as_the_whole_text(kind: str) -> None:
    tokenizer = build_tokenizer(TokenizerSpec(kind, 300), [TEXT])
    rng = random.Random(0)
    cuts = sorted(rng.sample(range(1, len(TEXT)), 60))
    chunks = [TEXT[a:b] for a, b in zip([0, *cuts], [*cuts, len(TEXT)], strict=True)]
    parts = list(segments(chunks))
    assert "".join(parts) == TEXT and len(parts) > 1
    assert [i for part in parts for i in tokenizer.encode(part)] == tokenizer.encode(TEXT)


@pytest.mark.parametrize("kind", ["char", "word", "bpe"])
def test_token_store_per_kind_splits_by_characters(kind: str, tmp_path: Path) -> None:
    corpus_file = tmp_path / "c.txt"
    corpus_file.write_text(TEXT, encoding="utf-8")
    corpus = resolve_corpus(str(corpus_file), None)
    spec = TokenizerSpec(kind, None if kind == "char" else 300)
    splits = load_token_splits(corpus, spec=spec)
    assert type(splits.tokenizer).__name__.lower().startswith(kind)
    assert splits.split_chars("all") == len(TEXT)
    assert abs(splits.split_chars("train") - 0.9 * len(TEXT)) < 80
    val_text = TEXT[splits.split_chars("train"):]
    if kind != "word":  # word decoding normalises spacing
        assert splits.tokenizer.decode(splits.val.tolist()) == val_text
    assert list(splits.tokens) == splits.tokenizer.encode(TEXT)
    other = load_token_splits(corpus, spec=TokenizerSpec(kind, None if kind == "char" else 320))
    if kind != "char":  # the cache is keyed on the settings
        assert other.meta["key"] != splits.meta["key"]


def test_a_vocabulary_above_65535_is_stored_as_uint32(tmp_path: Path) -> None:
    chars = [chr(c) for c in range(0x4E00, 0x4E00 + 70_000) if not 0xD800 <= c < 0xE000]
    corpus_file = tmp_path / "big.txt"
    corpus_file.write_text("".join(chars) * 2, encoding="utf-8")
    splits = load_token_splits(resolve_corpus(str(corpus_file), None))
    assert isinstance(splits.tokenizer, CharTokenizer)
    assert splits.tokenizer.vocab_size == len(chars) > 65_535
    assert splits.tokens.dtype == np.uint32
    assert int(splits.tokens.max()) == len(chars) - 1
