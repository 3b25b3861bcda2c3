"""Character tokenizer as plain JSON-compatible data, and the dispatch to every tokenizer kind.

The one implementation used by training (`textgen_core`) and by the torch-free runtime, so that
encoding and decoding give identical results on both sides. Serialised form::

    {"type": "char", "version": 1, "chars": ["\\n", " ", "!", ...]}
    {"type": "char", "version": 1, "chars": [...], "unk": true}

Token id i is `chars[i]`; the list is sorted by code point so the same text gives the same ids.
With `unk` (added when a model is fine-tuned with `--new-tokens unk`), one more id, `vocab_size
- 1`, stands for every character outside the list and decodes as U+FFFD.

The kinds (`tokenizer_from_dict`): `char` (here), `word` (runtime/word_tokenizer.py) and `bpe`
(runtime/bpe_tokenizer.py). Each offers `vocab_size`, `encode`, `decode`, `decode_stream` (one
text piece per id, never half a character or a wrongly joined word), `unknown_characters` and
`to_dict` (the `Tokenizer` protocol below).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, Protocol

from runtime.errors import TokenizerError

CHAR_TOKENIZER_VERSION = 1
UNK_TEXT = "\ufffd"  # how a char tokenizer's <unk> id decodes
KINDS = ("char", "word", "bpe")


class Tokenizer(Protocol):
    """What training, export and the runtime use of a tokenizer, whichever its kind."""

    @property
    def vocab_size(self) -> int: ...

    def encode(self, text: str) -> list[int]: ...

    def decode(self, ids: Iterable[int]) -> str: ...

    def decode_stream(self, ids: Iterable[int]) -> Iterator[str]: ...

    def piece_decoder(self) -> Callable[[int], str]: ...

    def unknown_characters(self, text: str) -> list[str]: ...

    def to_dict(self) -> dict[str, Any]: ...


def require_utf8(entries: Sequence[str]) -> None:
    """Every entry can be written as UTF-8: a lone surrogate (JSON "\\ud800") cannot, and would
    fail every later print, save or export."""
    for i, entry in enumerate(entries):
        try:
            entry.encode("utf-8")
        except UnicodeEncodeError:
            raise TokenizerError(f"tokenizer data is malformed: entry {i} is not valid Unicode "
                                 "text (it holds a lone surrogate)") from None


def _describe(chars: Iterable[str]) -> str:
    shown = sorted(set(chars))
    listed = ", ".join(repr(c) for c in shown[:10])
    more = f" and {len(shown) - 10} more" if len(shown) > 10 else ""
    return f"{listed}{more}"


class CharTokenizer:
    """Maps each distinct character of a corpus to one token id."""

    def __init__(self, chars: Sequence[str], unk: bool = False) -> None:
        if not chars:
            raise TokenizerError("a character tokenizer needs at least one character")
        if any(not isinstance(c, str) or len(c) != 1 for c in chars):
            raise TokenizerError("tokenizer data is malformed: every entry must be one character")
        if len(set(chars)) != len(chars):
            raise TokenizerError("tokenizer data is malformed: characters repeat")
        require_utf8(chars)
        self.chars: list[str] = list(chars)
        self.unk = bool(unk)
        self._ids: dict[str, int] = {c: i for i, c in enumerate(self.chars)}

    @classmethod
    def from_text(cls, text: str) -> CharTokenizer:
        return cls(sorted(set(text)))

    @property
    def vocab_size(self) -> int:
        return len(self.chars) + self.unk

    @property
    def unk_id(self) -> int | None:
        return len(self.chars) if self.unk else None

    def unknown_characters(self, text: str) -> list[str]:
        return sorted(set(text) - self._ids.keys())

    def encode(self, text: str) -> list[int]:
        """Token ids of `text`; a character not in the vocabulary is `<unk>` if there is one, else
        a TokenizerError naming it."""
        if self.unk:
            unk = len(self.chars)
            return [self._ids.get(c, unk) for c in text]
        try:
            return [self._ids[c] for c in text]
        except KeyError:
            unknown = self.unknown_characters(text)
            raise TokenizerError(
                f"the text has {len(unknown)} character(s) this model does not know: "
                f"{_describe(unknown)}"
            ) from None

    def decode(self, ids: Iterable[int]) -> str:
        return "".join(self.decode_stream(ids))

    def decode_stream(self, ids: Iterable[int]) -> Iterator[str]:
        """One character per id."""
        return map(self.piece_decoder(), ids)

    def piece_decoder(self) -> Callable[[int], str]:
        """Token id -> its text, for one generated sequence (a char needs no context)."""
        chars, size = self.chars, self.vocab_size

        def piece(i: int) -> str:
            i = int(i)
            if not 0 <= i < size:
                raise TokenizerError(f"token id out of range 0..{size - 1}")
            return chars[i] if i < len(chars) else UNK_TEXT

        return piece

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"type": "char", "version": CHAR_TOKENIZER_VERSION,
                                "chars": list(self.chars)}
        if self.unk:
            data["unk"] = True
        return data

    @classmethod
    def from_dict(cls, data: Any) -> CharTokenizer:
        if not isinstance(data, dict) or data.get("type") != "char":
            raise TokenizerError("tokenizer data is not a character tokenizer")
        if data.get("version") != CHAR_TOKENIZER_VERSION:
            raise TokenizerError(
                f"character tokenizer version {data.get('version')!r} is not supported "
                f"(this textgen reads version {CHAR_TOKENIZER_VERSION})"
            )
        chars = data.get("chars")
        if not isinstance(chars, list):
            raise TokenizerError("tokenizer data is malformed: 'chars' must be a list")
        unk = data.get("unk", False)
        if not isinstance(unk, bool):
            raise TokenizerError("tokenizer data is malformed: 'unk' must be true or false")
        return cls(chars, unk=unk)


def tokenizer_from_dict(data: Any) -> Any:
    """Rebuild whichever tokenizer `data` describes: a `CharTokenizer`, `WordTokenizer` or
    `BPETokenizer` (all `Tokenizer`s; typed Any so callers keep the kind they check for)."""
    kind = data.get("type") if isinstance(data, dict) else None
    if kind == "char":
        return CharTokenizer.from_dict(data)
    if kind == "word":
        from runtime.word_tokenizer import WordTokenizer

        return WordTokenizer.from_dict(data)
    if kind == "bpe":
        from runtime.bpe_tokenizer import BPETokenizer

        return BPETokenizer.from_dict(data)
    shown = kind if isinstance(data, dict) else type(data).__name__
    raise TokenizerError(f"unknown tokenizer type {shown!r} (known: {', '.join(KINDS)})")


def line_start_ids(tokenizer: Any) -> list[int]:
    """What an empty prompt continues from: a line break when the vocabulary has one (the start
    of a line of text), else token 0."""
    if isinstance(tokenizer, CharTokenizer):
        return [tokenizer.chars.index("\n")] if "\n" in tokenizer.chars else [0]
    from runtime.word_tokenizer import END_ID, WordTokenizer

    if isinstance(tokenizer, WordTokenizer):
        return [END_ID]  # a line break, in a `lines` vocabulary
    return tokenizer.encode("\n")[-1:] or [0]  # bpe: the newline byte's token


def start_ids(tokenizer: Tokenizer, prompt: str) -> list[int]:
    """Token ids to continue from. An empty prompt starts at a newline (the start of a line of
    text) when the vocabulary has one, else at token 0; that start is not part of the output."""
    if prompt:
        return tokenizer.encode(prompt)
    return line_start_ids(tokenizer)
