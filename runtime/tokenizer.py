"""Character tokenizer as plain JSON-compatible data.

The one implementation used by training (`textgen_core`) and by the torch-free runtime, so that
encoding and decoding give identical results on both sides. Serialised form::

    {"type": "char", "version": 1, "chars": ["\\n", " ", "!", ...]}

Token id i is `chars[i]`; the list is sorted by code point so the same text gives the same ids.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from runtime.errors import TokenizerError

CHAR_TOKENIZER_VERSION = 1


def _describe(chars: Iterable[str]) -> str:
    shown = sorted(set(chars))
    listed = ", ".join(repr(c) for c in shown[:10])
    more = f" and {len(shown) - 10} more" if len(shown) > 10 else ""
    return f"{listed}{more}"


class CharTokenizer:
    """Maps each distinct character of a corpus to one token id."""

    def __init__(self, chars: Sequence[str]) -> None:
        if not chars:
            raise TokenizerError("a character tokenizer needs at least one character")
        if any(not isinstance(c, str) or len(c) != 1 for c in chars):
            raise TokenizerError("tokenizer data is malformed: every entry must be one character")
        if len(set(chars)) != len(chars):
            raise TokenizerError("tokenizer data is malformed: characters repeat")
        self.chars: list[str] = list(chars)
        self._ids: dict[str, int] = {c: i for i, c in enumerate(self.chars)}

    @classmethod
    def from_text(cls, text: str) -> CharTokenizer:
        return cls(sorted(set(text)))

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    def unknown_characters(self, text: str) -> list[str]:
        return sorted(set(text) - self._ids.keys())

    def encode(self, text: str) -> list[int]:
        """Token ids of `text`; raises TokenizerError naming any character not in the vocabulary."""
        try:
            return [self._ids[c] for c in text]
        except KeyError:
            unknown = self.unknown_characters(text)
            raise TokenizerError(
                f"the text has {len(unknown)} character(s) this model does not know: "
                f"{_describe(unknown)}"
            ) from None

    def decode(self, ids: Iterable[int]) -> str:
        chars = self.chars
        try:
            return "".join(chars[int(i)] for i in ids)
        except IndexError:
            raise TokenizerError(f"token id out of range 0..{len(chars) - 1}") from None

    def to_dict(self) -> dict[str, Any]:
        return {"type": "char", "version": CHAR_TOKENIZER_VERSION, "chars": list(self.chars)}

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
        return cls(chars)


def tokenizer_from_dict(data: Any) -> CharTokenizer:
    """Rebuild whichever tokenizer `data` describes (only `char` exists so far)."""
    if isinstance(data, dict) and data.get("type") == "char":
        return CharTokenizer.from_dict(data)
    if isinstance(data, dict) and data.get("type") == "word":
        from runtime.word_tokenizer import WordTokenizer  # the GAN's vocabulary

        return WordTokenizer.from_dict(data)  # type: ignore[return-value]
    kind = data.get("type") if isinstance(data, dict) else type(data).__name__
    raise TokenizerError(f"unknown tokenizer type {kind!r}")
