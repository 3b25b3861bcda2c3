"""Sentences of a corpus as word ids: the GAN's training samples.

Text is cut into paragraphs at blank lines; lines without any lowercase letter (speaker tags,
titles, headings) are dropped; a paragraph is cut into sentences after `.`, `!` or `?`; each
sentence is split into words with nltk's Treebank tokenizer (rules only, no downloaded data).
A fortune corpus (`--corpus fortunes`) gives one sample per fortune instead: its lines are joined
and the whole fortune is split into words.
Sentences of 1 .. seq_len - 1 words are kept, so every sample ends with `<end>` (which then fills
the rest of the row). The last 10% of the sentences, in corpus order, are held out.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from runtime.word_tokenizer import END_ID, SPECIALS, WordTokenizer
from textgen_core.data.corpus import Corpus, FileDigest, corpus_fingerprint, iter_corpus_text, iter_file_text
from textgen_core.errors import ConfigError, CorpusError

VAL_FRACTION = 0.1
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+")


@dataclass
class SentenceData:
    tokenizer: WordTokenizer
    train: np.ndarray  # (N_train, seq_len) int64 word ids, rows padded with <end>
    val: np.ndarray  # (N_val, seq_len)
    val_words: list[list[str]]  # held-out sentences as (lowercased) words, for BLEU references
    train_lengths: np.ndarray  # words per training sentence, for the unigram baseline
    unigram: np.ndarray  # (V,) probability of each id among training words
    fingerprint: str  # corpus_fingerprint of the text read, for the checkpoint


def _paragraphs(chunks: Iterable[str]) -> Iterator[str]:
    lines: list[str] = []
    tail = ""
    for chunk in chunks:
        text = tail + chunk
        parts = text.split("\n")
        tail = parts.pop()
        for line in parts:
            if line.strip():
                if any(c.islower() for c in line):
                    lines.append(line.strip())
            elif lines:
                yield " ".join(lines)
                lines = []
    if tail.strip() and any(c.islower() for c in tail):
        lines.append(tail.strip())
    if lines:
        yield " ".join(lines)


def split_words(corpus: Corpus, lowercase: bool = True,
                digests: list[FileDigest] | None = None) -> Iterator[list[str]]:
    """Every sample of the corpus as a list of words (no length filter): its sentences, or for a
    fortune corpus its fortunes. `digests` collects what the streaming pass saw of each file."""
    if corpus.format == "fortunes":
        from textgen_core.data.fortunes import split_fortunes

        return _words_of_each(
            (fortune for _, fortune in split_fortunes(iter_file_text(corpus, digests))), lowercase)
    return split_text_words((chunk for _, chunk in iter_corpus_text(corpus, digests)), lowercase)


def _words_of_each(samples: Iterable[str], lowercase: bool) -> Iterator[list[str]]:
    from nltk.tokenize import TreebankWordTokenizer

    tokenizer = TreebankWordTokenizer()
    for sample in samples:
        text = " ".join(sample.split())
        words = tokenizer.tokenize(text.lower() if lowercase else text)
        if words:
            yield words


def split_text_words(chunks: Iterable[str], lowercase: bool = True) -> Iterator[list[str]]:
    """Every sentence of the text (given in chunks) as a list of words."""
    from nltk.tokenize import TreebankWordTokenizer

    tokenizer = TreebankWordTokenizer()
    for paragraph in _paragraphs(chunks):
        for sentence in _SENTENCE_END.split(paragraph):
            if not sentence.strip():
                continue
            words = tokenizer.tokenize(sentence.lower() if lowercase else sentence)
            if words:
                yield words


def validate_sizes(vocab_size: int, seq_len: int) -> None:
    if vocab_size <= len(SPECIALS):
        raise ConfigError(f"--vocab-size ({vocab_size}) must be larger than the {len(SPECIALS)} "
                          f"special tokens ({', '.join(SPECIALS)})")
    if seq_len < 2:
        raise ConfigError(f"--seq-len must be at least 2 (words plus <end>), got {seq_len}")


def build_vocabulary(sentences: list[list[str]], vocab_size: int, lowercase: bool = True) -> WordTokenizer:
    """The `vocab_size - 2` most frequent words (ties: alphabetical) after the special tokens."""
    counts = Counter(w for s in sentences for w in s)
    for special in SPECIALS:
        counts.pop(special, None)
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    words = list(SPECIALS) + [w for w, _ in ranked[: vocab_size - len(SPECIALS)]]
    return WordTokenizer(words, lowercase=lowercase)


def encode_rows(tokenizer: WordTokenizer, sentences: list[list[str]], seq_len: int) -> np.ndarray:
    rows = np.full((len(sentences), seq_len), END_ID, dtype=np.int64)
    for i, words in enumerate(sentences):
        ids = tokenizer.encode_words(words)
        rows[i, : len(ids)] = ids
    return rows


def load_sentences(
    corpus: Corpus, seq_len: int, vocab_size: int, min_train: int,
    tokenizer: WordTokenizer | None = None,
) -> SentenceData:
    """Sentences that fit `seq_len`, the vocabulary (built from the train part unless given) and
    the train/held-out rows. `min_train`: the fewest training sentences a run can use (a batch)."""
    validate_sizes(vocab_size if tokenizer is None else tokenizer.vocab_size, seq_len)
    lowercase = True if tokenizer is None else tokenizer.lowercase
    digests: list[FileDigest] = []
    kept = [s for s in split_words(corpus, lowercase, digests) if len(s) <= seq_len - 1]
    n_val = int(len(kept) * VAL_FRACTION)
    train_words, val_words = kept[: len(kept) - n_val], kept[len(kept) - n_val :]
    if len(train_words) < max(min_train, 1):
        raise CorpusError(
            f"corpus {corpus.name} has {len(train_words)} training sentence(s) of at most "
            f"{seq_len - 1} words, fewer than a batch ({min_train}); use a larger corpus, a larger "
            "--seq-len or a smaller --batch-size"
        )
    if tokenizer is None:
        tokenizer = build_vocabulary(train_words, vocab_size, lowercase)
    train = encode_rows(tokenizer, train_words, seq_len)
    lengths = np.array([len(s) for s in train_words], dtype=np.int64)
    counts = np.bincount(train[train != END_ID], minlength=tokenizer.vocab_size).astype(np.float64)
    return SentenceData(
        tokenizer=tokenizer, train=train, val=encode_rows(tokenizer, val_words, seq_len),
        val_words=[[tokenizer.words[i] for i in tokenizer.encode_words(s)] for s in val_words],
        train_lengths=lengths, unigram=counts / counts.sum(),
        fingerprint=corpus_fingerprint(corpus, digests),
    )
