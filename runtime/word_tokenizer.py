"""Word tokenizer as plain JSON-compatible data (the GAN's vocabulary).

Shared by training and the torch-free runtime, like the character tokenizer. Serialised form::

    {"type": "word", "version": 1, "lowercase": true, "words": ["<end>", "<unk>", "the", ...]}

Token id i is `words[i]`. Ids 0 and 1 are always `<end>` (closes a sentence and fills the rest of
its fixed length, so it is also the padding) and `<unk>` (every word outside the capped
vocabulary). Splitting raw text into words needs nltk and lives in
`textgen_core/data/sentences.py`; this module only maps words to ids and joins ids back into
readable text.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from runtime.errors import TokenizerError

WORD_TOKENIZER_VERSION = 1
END, UNK = "<end>", "<unk>"
SPECIALS = (END, UNK)
END_ID, UNK_ID = 0, 1

# Detokenisation: no space before closing punctuation and clitics, none after opening ones.
_NO_SPACE_BEFORE = {".", ",", ";", ":", "!", "?", ")", "]", "}", "'", "''", "...", "n't", "'s",
                    "'ll", "'d", "'re", "'ve", "'m", "--"}
_NO_SPACE_AFTER = {"(", "[", "{", "``", "--"}
_QUOTES = {"``": '"', "''": '"'}


class WordTokenizer:
    """Maps words to ids through a fixed vocabulary; unknown words become `<unk>`."""

    def __init__(self, words: Sequence[str], lowercase: bool = True) -> None:
        if tuple(words[:2]) != SPECIALS:
            raise TokenizerError(f"tokenizer data is malformed: a word vocabulary starts with {END} "
                                 f"and {UNK}")
        if any(not isinstance(w, str) or not w or any(c.isspace() for c in w) for w in words):
            raise TokenizerError("tokenizer data is malformed: every word must be a non-empty "
                                 "string without spaces")
        if len(set(words)) != len(words):
            raise TokenizerError("tokenizer data is malformed: words repeat")
        self.words: list[str] = list(words)
        self.lowercase = bool(lowercase)
        self._ids: dict[str, int] = {w: i for i, w in enumerate(self.words)}

    @property
    def vocab_size(self) -> int:
        return len(self.words)

    def encode_words(self, words: Iterable[str]) -> list[int]:
        """Ids of already split words; words outside the vocabulary map to `<unk>`."""
        fold = str.lower if self.lowercase else str
        return [self._ids.get(fold(w), UNK_ID) for w in words]

    def decode_words(self, ids: Iterable[int]) -> list[str]:
        """The words up to the first `<end>`."""
        words = []
        for i in ids:
            i = int(i)
            if not 0 <= i < len(self.words):
                raise TokenizerError(f"token id out of range 0..{len(self.words) - 1}")
            if i == END_ID:
                break
            words.append(self.words[i])
        return words

    def decode(self, ids: Iterable[int]) -> str:
        """Readable text: words up to `<end>`, joined with punctuation attached."""
        return detokenize(self.decode_words(ids))

    def to_dict(self) -> dict[str, Any]:
        return {"type": "word", "version": WORD_TOKENIZER_VERSION, "lowercase": self.lowercase,
                "words": list(self.words)}

    @classmethod
    def from_dict(cls, data: Any) -> WordTokenizer:
        if not isinstance(data, dict) or data.get("type") != "word":
            raise TokenizerError("tokenizer data is not a word tokenizer")
        if data.get("version") != WORD_TOKENIZER_VERSION:
            raise TokenizerError(f"word tokenizer version {data.get('version')!r} is not supported "
                                 f"(this textgen reads version {WORD_TOKENIZER_VERSION})")
        words = data.get("words")
        if not isinstance(words, list):
            raise TokenizerError("tokenizer data is malformed: 'words' must be a list")
        return cls(words, lowercase=bool(data.get("lowercase", True)))


def detokenize(words: Sequence[str]) -> str:
    """Join Treebank-style tokens into text: `["he", "said", ",", "do", "n't"]` → `he said, don't`."""
    out: list[str] = []
    glue = True  # no space before the first word
    for word in words:
        text = _QUOTES.get(word, word)
        if not glue and word not in _NO_SPACE_BEFORE:
            out.append(" ")
        out.append(text)
        glue = word in _NO_SPACE_AFTER
    return "".join(out)
