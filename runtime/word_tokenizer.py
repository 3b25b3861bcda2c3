"""Word tokenizer as plain JSON-compatible data: the GAN's vocabulary, and the word-level
vocabulary of a GPT or layer stack (`--tokenizer word`).

Shared by training and the torch-free runtime, like the character tokenizer. Serialised form::

    {"type": "word", "version": 1, "lowercase": true, "words": ["<end>", "<unk>", "the", ...]}
    {"type": "word", "version": 2, "lowercase": false, "split": "lines", "words": [...]}

Token id i is `words[i]`. Ids 0 and 1 are always `<end>` and `<unk>` (every word outside the
capped vocabulary). Version 1 is the GAN's: `<end>` closes a sentence and fills the rest of its
fixed length; splitting raw text into sentences needs nltk and lives in
`textgen_core/data/sentences.py`, and decoding stops at the first `<end>`. Version 2 (`split:
"lines"`) is a language model's: the tokenizer splits text itself with `WORD_PATTERN` (words
with inner apostrophes, and runs of one punctuation mark), `<end>` stands for a line break,
and decoding rebuilds lines with single spaces between words and punctuation attached.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from runtime.errors import TokenizerError
from runtime.tokenizer import require_utf8

WORD_TOKENIZER_VERSION = 1
LINES_VERSION = 2  # a language model's vocabulary: split "lines"
SPLITS = ("lines",)
END, UNK = "<end>", "<unk>"
SPECIALS = (END, UNK)
END_ID, UNK_ID = 0, 1

# Detokenisation: no space before closing punctuation and clitics, none after opening ones.
_NO_SPACE_BEFORE = {".", ",", ";", ":", "!", "?", ")", "]", "}", "'", "''", "...", "n't", "'s",
                    "'ll", "'d", "'re", "'ve", "'m", "--"}
_NO_SPACE_AFTER = {"(", "[", "{", "``", "--"}
_QUOTES = {"``": '"', "''": '"'}
# A word (letters, digits, underscores, with inner apostrophes: "don't", "o'er"), or a run of one
# punctuation mark ("--", "...", "!"). Whitespace separates; line breaks become `<end>`.
WORD_PATTERN = re.compile(r"\w+(?:['\u2019]\w+)*|([^\w\s])\1*")


def split_words(line: str) -> list[str]:
    """The words of one line of text, as the `lines` tokenizer reads it."""
    return [m.group(0) for m in WORD_PATTERN.finditer(line)]


class WordTokenizer:
    """Maps words to ids through a fixed vocabulary; unknown words become `<unk>`."""

    def __init__(self, words: Sequence[str], lowercase: bool = True, split: str | None = None) -> None:
        if tuple(words[:2]) != SPECIALS:
            raise TokenizerError(f"tokenizer data is malformed: a word vocabulary starts with {END} "
                                 f"and {UNK}")
        if any(not isinstance(w, str) or not w or any(c.isspace() for c in w) for w in words):
            raise TokenizerError("tokenizer data is malformed: every word must be a non-empty "
                                 "string without spaces")
        if len(set(words)) != len(words):
            raise TokenizerError("tokenizer data is malformed: words repeat")
        require_utf8(words)
        if split is not None and split not in SPLITS:
            raise TokenizerError(f"tokenizer data is malformed: word split {split!r} is unknown "
                                 f"(known: {', '.join(SPLITS)})")
        self.words: list[str] = list(words)
        self.lowercase = bool(lowercase)
        self.split = split
        self._ids: dict[str, int] = {w: i for i, w in enumerate(self.words)}

    @property
    def vocab_size(self) -> int:
        return len(self.words)

    def encode_words(self, words: Iterable[str]) -> list[int]:
        """Ids of already split words; words outside the vocabulary map to `<unk>`."""
        fold = str.lower if self.lowercase else str
        return [self._ids.get(fold(w), UNK_ID) for w in words]

    def _fold(self, word: str) -> str:
        return word.lower() if self.lowercase else word

    def _require_lines(self) -> None:
        if self.split != "lines":
            raise TokenizerError("this word vocabulary holds sentences (a GAN's); it does not "
                                 "encode running text")

    def encode(self, text: str) -> list[int]:
        """Ids of running text (a `lines` vocabulary): each line's words, `<end>` per line break;
        words outside the vocabulary map to `<unk>`."""
        self._require_lines()
        ids: list[int] = []
        lines = text.split("\n")
        for n, line in enumerate(lines):
            ids += [self._ids.get(self._fold(w), UNK_ID) for w in split_words(line)]
            if n < len(lines) - 1:
                ids.append(END_ID)
        return ids

    def unknown_characters(self, text: str) -> list[str]:
        """The characters of no word in the vocabulary: none for a character-free vocabulary,
        whose unknown words are `<unk>` (count them with `unknown_word_chars`)."""
        return []

    def unknown_word_chars(self, text: str) -> int:
        """How many characters of `text` are in words that map to `<unk>`."""
        self._require_lines()
        return sum(len(w) for w in split_words(text) if self._fold(w) not in self._ids)

    def decode_stream(self, ids: Iterable[int]) -> Iterator[str]:
        """One piece per id, which joined give `decode(ids)`."""
        return map(self.piece_decoder(continuing=False), ids)

    def piece_decoder(self, continuing: bool = True) -> Callable[[int], str]:
        """Token id -> text piece for one generated sequence: a word with the space before it
        (none after an opening bracket or before closing punctuation), or a line break. A
        sentence vocabulary's pieces after its first `<end>` are empty. `continuing`: the
        pieces follow a prompt, so a first word is spaced from it."""
        glue, ended = not continuing, False
        words, lines = self.words, self.split == "lines"

        def piece(i: int) -> str:
            nonlocal glue, ended
            i = int(i)
            if not 0 <= i < len(words):
                raise TokenizerError(f"token id out of range 0..{len(words) - 1}")
            if ended:
                return ""
            if i == END_ID:
                ended, glue = not lines, True
                return "\n" if lines else ""
            word = words[i]
            space = "" if glue or word in _NO_SPACE_BEFORE else " "
            glue = word in _NO_SPACE_AFTER
            return space + _QUOTES.get(word, word)

        return piece

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
        """Readable text: words up to `<end>` (a `lines` vocabulary: lines, `<end>` between
        them), joined with punctuation attached."""
        if self.split == "lines":
            return "".join(self.decode_stream(ids))
        return detokenize(self.decode_words(ids))

    def to_dict(self) -> dict[str, Any]:
        if self.split is not None:
            return {"type": "word", "version": LINES_VERSION, "lowercase": self.lowercase,
                    "split": self.split, "words": list(self.words)}
        return {"type": "word", "version": WORD_TOKENIZER_VERSION, "lowercase": self.lowercase,
                "words": list(self.words)}

    @classmethod
    def from_dict(cls, data: Any) -> WordTokenizer:
        if not isinstance(data, dict) or data.get("type") != "word":
            raise TokenizerError("tokenizer data is not a word tokenizer")
        version = data.get("version")
        if version not in (WORD_TOKENIZER_VERSION, LINES_VERSION):
            raise TokenizerError(f"word tokenizer version {version!r} is not supported "
                                 f"(this textgen reads versions {WORD_TOKENIZER_VERSION} and "
                                 f"{LINES_VERSION})")
        words = data.get("words")
        if not isinstance(words, list):
            raise TokenizerError("tokenizer data is malformed: 'words' must be a list")
        split = data.get("split") if version == LINES_VERSION else None
        if version == LINES_VERSION and split is None:
            raise TokenizerError("tokenizer data is malformed: a version 2 word vocabulary names "
                                 "its 'split'")
        return cls(words, lowercase=bool(data.get("lowercase", True)), split=split)


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
