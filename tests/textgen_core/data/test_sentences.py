"""Corpus → sentences → word ids for the GAN."""

from pathlib import Path

import pytest

from runtime.word_tokenizer import END_ID, UNK_ID
from textgen_core.data.corpus import resolve_corpus
from textgen_core.data.sentences import load_sentences, split_text_words
from textgen_core.errors import ConfigError, CorpusError


def test_sentences_skip_heading_lines_and_split_at_sentence_ends() -> None:
    text = "HAMLET.\nTo be, or not\nto be. Ay me!\n\nKING.\nWhat's that?\n"
    assert list(split_text_words([text])) == [
        ["to", "be", ",", "or", "not", "to", "be", "."], ["ay", "me", "!"], ["what", "'s", "that", "?"]]


def test_rows_are_padded_with_end_and_vocabulary_is_capped(sentence_corpus_file: Path) -> None:
    data = load_sentences(resolve_corpus(str(sentence_corpus_file)), seq_len=8, vocab_size=10, min_train=8)
    assert data.tokenizer.vocab_size == 10
    assert data.tokenizer.words[:2] == ["<end>", "<unk>"]
    assert data.train.shape[1] == 8 and (data.train[:, -1] == END_ID).all()
    assert (data.train == UNK_ID).any()  # the cap sends rare words to <unk>
    assert len(data.val) == len(data.val_words) > 0
    assert abs(data.unigram.sum() - 1) < 1e-9


def test_too_few_sentences_for_a_batch(sentence_corpus_file: Path) -> None:
    with pytest.raises(CorpusError, match=r"fewer than a batch \(1000\)"):
        load_sentences(resolve_corpus(str(sentence_corpus_file)), seq_len=8, vocab_size=50, min_train=1000)


@pytest.mark.parametrize(("vocab", "seq", "message"), [
    (2, 8, r"--vocab-size \(2\) must be larger than the 2 special tokens"),
    (50, 0, "--seq-len must be at least 2"),
])
def test_impossible_sizes(sentence_corpus_file: Path, vocab: int, seq: int, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_sentences(resolve_corpus(str(sentence_corpus_file)), seq_len=seq, vocab_size=vocab, min_train=1)
