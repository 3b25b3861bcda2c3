"""Byte-level BPE in pure Python, read from the Hugging Face `tokenizer.json` data.

Training builds the vocabulary with the `tokenizers` library (textgen_core/data/tokenizers.py);
this module encodes and decodes from the stored data alone, with the ids that library gives
(tests/runtime/test_bpe_tokenizer.py checks them against it). Serialised form::

    {"type": "bpe", "version": 1, "tokenizer": {...the tokenizer.json content...}}

Encoding is GPT-2's (Radford et al. 2019): the text is split into pieces by the ByteLevel
pre-tokenizer's pattern (contractions, letter runs, digit runs, other symbols, each with at most
one leading space, and whitespace), each piece's UTF-8 bytes are spelled with GPT-2's
byte-to-unicode alphabet, and the merges are applied lowest rank first. Every byte is in the
alphabet, so no text is ever unknown. Decoding joins the tokens' bytes; the streaming decoder
holds back a multi-byte character until its last byte arrives.
"""

from __future__ import annotations

import codecs
import heapq
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from functools import lru_cache
from typing import Any

from runtime.errors import TokenizerError

BPE_TOKENIZER_VERSION = 1
_CONTRACTIONS = ("s", "t", "re", "ve", "m", "ll", "d")  # after "'", in the pattern's order
# Python's str.isspace() also counts the four ASCII separators; the Unicode White_Space property
# that the pattern's \s means does not.
_NOT_WHITESPACE = frozenset("\x1c\x1d\x1e\x1f")
_CACHED_PIECE = 256  # characters: longer pieces are rare and would make the cache's memory unbounded


@lru_cache(maxsize=1)
def byte_to_unicode() -> dict[int, str]:
    """GPT-2's map from each byte to a printable character (printable bytes map to themselves)."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table, extra = {}, 0
    for b in range(256):
        if b in keep:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


def _is_space(c: str) -> bool:
    return c.isspace() and c not in _NOT_WHITESPACE


@lru_cache(maxsize=4096)
def _kind(c: str) -> str:
    """L (letter), N (number), S (whitespace) or O (anything else), as the pattern sees `c`."""
    if _is_space(c):
        return "S"
    major = unicodedata.category(c)[0]
    return major if major in "LN" else "O"


def pre_tokenize(text: str) -> list[str]:
    """The pieces of GPT-2's pattern
    `'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+`,
    matched leftmost-first as the regex engine does (Python's `re` has no \\p{L})."""
    pieces: list[str] = []
    i, n = 0, len(text)
    kinds = [_kind(c) for c in text]
    while i < n:
        if text[i] == "'":
            found = next((c for c in _CONTRACTIONS if text.startswith(c, i + 1)), None)
            if found:
                pieces.append(text[i:i + 1 + len(found)])
                i += 1 + len(found)
                continue
        start = i + 1 if text[i] == " " and i + 1 < n and kinds[i + 1] != "S" else i
        kind = kinds[start]
        if kind != "S":  # a run of one kind, with the space before it
            j = start + 1
            while j < n and kinds[j] == kind:
                j += 1
            pieces.append(text[i:j])
            i = j
            continue
        j = i + 1
        while j < n and kinds[j] == "S":
            j += 1
        if j < n and j - i >= 2:  # \s+(?!\S): the run but its last, which goes with what follows
            j -= 1
        pieces.append(text[i:j])
        i = j
    return pieces


# The tokenizer.json that textgen writes (textgen_core/data/tokenizers.py), field by field: the
# value each field must hold, or for the model the fields it may have. Anything else (a
# `padding` or `truncation` option, a normalizer, added tokens, a post-processor) is refused
# here, before the `tokenizers` library, which would obey it, ever sees the data.
_NULL_FIELDS = ("truncation", "padding", "normalizer", "post_processor")
_TOP_FIELDS = frozenset({"version", "added_tokens", "pre_tokenizer", "decoder", "model", *_NULL_FIELDS})
_BYTE_LEVEL_FIELDS = frozenset({"type", "add_prefix_space", "trim_offsets", "use_regex"})
_MODEL_FIELDS = frozenset({"type", "dropout", "unk_token", "continuing_subword_prefix", "end_of_word_suffix",
                           "fuse_unk", "byte_fallback", "ignore_merges", "vocab", "merges"})
_MODEL_OFF = ("dropout", "unk_token", "continuing_subword_prefix", "end_of_word_suffix", "fuse_unk",
              "byte_fallback")


def _malformed(reason: str) -> TokenizerError:
    return TokenizerError(f"tokenizer data is malformed: {reason}")


def _unknown(fields: Any, allowed: frozenset[str], where: str) -> None:
    extra = sorted(str(k)[:40] for k in fields if k not in allowed)
    if extra:
        raise _malformed(f"{where} has field(s) {', '.join(map(repr, extra[:5]))} that textgen does "
                         "not write")


def _byte_level(value: Any, where: str, prefix_space: bool | None) -> None:
    if not isinstance(value, dict) or value.get("type") != "ByteLevel":
        raise _malformed(f"a bpe tokenizer needs the ByteLevel {where}")
    _unknown(value, _BYTE_LEVEL_FIELDS, f"the {where}")
    if any(not isinstance(value.get(k, True), bool) for k in _BYTE_LEVEL_FIELDS - {"type"}):
        raise _malformed(f"the {where}'s options must be true or false")
    if prefix_space is not None and (value.get("add_prefix_space", False) != prefix_space
                                     or not value.get("use_regex", True)):
        raise _malformed(f"a bpe tokenizer needs the ByteLevel {where} without a prefix space")


def _checked_fields(data: Any) -> dict[str, Any]:
    """`data`'s model, once every field of `data` is one textgen writes, holding what it writes."""
    model = data.get("model") if isinstance(data, dict) else None
    if not isinstance(model, dict) or model.get("type") != "BPE":
        raise _malformed("a bpe tokenizer needs a BPE 'model'")
    _unknown(data, _TOP_FIELDS, "tokenizer.json")
    if data.get("version", "1.0") != "1.0":
        raise _malformed("tokenizer.json 'version' must be \"1.0\"")
    for name in _NULL_FIELDS:
        if data.get(name) is not None:
            raise _malformed(f"its {name!r} option is not one textgen writes; it must be null")
    if data.get("added_tokens"):
        raise _malformed("normalizers and added tokens are not supported")
    _byte_level(data.get("pre_tokenizer"), "pre-tokenizer", prefix_space=False)
    if data.get("decoder") is not None:
        _byte_level(data["decoder"], "decoder", prefix_space=None)
    _unknown(model, _MODEL_FIELDS, "the BPE model")
    if any(model.get(k) not in (None, False, "") for k in _MODEL_OFF):
        raise _malformed("subword prefixes, suffixes, dropout, unknown tokens and byte fallback are "
                         "not supported")
    if not isinstance(model.get("ignore_merges", False), bool):
        raise _malformed("the BPE model's 'ignore_merges' must be true or false")
    if not isinstance(model.get("merges", []), list):
        raise _malformed("the BPE model's 'merges' must be a list")
    return model


def _canonical(model: dict[str, Any]) -> dict[str, Any]:
    """The tokenizer.json holding only the checked model, in the form textgen writes."""
    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
    return {"version": "1.0", "truncation": None, "padding": None, "added_tokens": [], "normalizer": None,
            "pre_tokenizer": byte_level, "post_processor": None,
            "decoder": {**byte_level, "add_prefix_space": True},
            "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                      "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False,
                      "ignore_merges": bool(model.get("ignore_merges", False)),
                      "vocab": model.get("vocab"), "merges": model.get("merges", [])}}


class BPETokenizer:
    """Byte-level BPE over a `tokenizer.json` of the kind textgen trains (no normalizer, the
    ByteLevel pre-tokenizer and decoder, no special tokens)."""

    def __init__(self, data: dict[str, Any]) -> None:
        model = _checked_fields(data)
        self.data = _canonical(model)  # what the `tokenizers` library is handed: only these fields
        vocab = model.get("vocab")
        if not isinstance(vocab, dict) or not vocab:
            raise TokenizerError("tokenizer data is malformed: 'vocab' must be a non-empty object")
        ids = sorted(vocab.values()) if all(isinstance(v, int) and not isinstance(v, bool)
                                            for v in vocab.values()) else None
        if ids != list(range(len(vocab))) or not all(isinstance(k, str) and k for k in vocab):
            raise TokenizerError("tokenizer data is malformed: 'vocab' ids must be 0..V-1, once each")
        to_byte = {c: b for b, c in byte_to_unicode().items()}
        if any(c not in vocab for c in to_byte):
            raise TokenizerError("tokenizer data is malformed: the vocabulary lacks some of the 256 "
                                 "byte tokens")
        self._ids: dict[str, int] = vocab
        self._bytes: list[bytes] = [b""] * len(vocab)
        for token, i in vocab.items():
            if any(c not in to_byte for c in token):
                raise TokenizerError(f"tokenizer data is malformed: token {i} is not spelled in "
                                     "byte-level characters")
            self._bytes[i] = bytes(to_byte[c] for c in token)
        self._ranks: dict[tuple[str, str], int] = {}
        for rank, merge in enumerate(model.get("merges") or []):
            pair = tuple(merge.split(" ", 1)) if isinstance(merge, str) else tuple(merge)
            if len(pair) != 2 or not all(isinstance(p, str) and p in vocab for p in pair) \
                    or "".join(pair) not in vocab:
                raise TokenizerError(f"tokenizer data is malformed: merge {rank} is not a pair of "
                                     "tokens whose join is in the vocabulary")
            self._ranks.setdefault(pair, rank)  # type: ignore[arg-type]
        self._ignore_merges = bool(model.get("ignore_merges"))
        self._cache: dict[str, list[int]] = {}

    @property
    def vocab_size(self) -> int:
        return len(self._bytes)

    def unknown_characters(self, text: str) -> list[str]:
        return []  # every byte has a token

    def _merge(self, piece: str) -> list[int]:
        cached = self._cache.get(piece)
        if cached is not None:
            return cached
        table = byte_to_unicode()
        word = [table[b] for b in piece.encode("utf-8")]
        if self._ignore_merges and "".join(word) in self._ids:
            word = ["".join(word)]
        if len(word) > 1:
            word = self._apply_merges(word)
        ids = [self._ids[t] for t in word]
        if len(self._cache) < 100_000 and len(piece) <= _CACHED_PIECE:
            self._cache[piece] = ids
        return ids

    def _apply_merges(self, word: list[str]) -> list[str]:
        """The merges applied lowest rank first, leftmost first among equals, as the `tokenizers`
        library does (its word.rs): a heap of candidate pairs over a linked list of symbols, so a
        piece of n bytes takes O(n log n) time (merging the whole word once per rank took
        O(n^2): 148 s for a 1 MB paste of letters)."""
        ranks = self._ranks
        symbols: list[str | None] = list(word)
        n = len(word)
        after = [*range(1, n), -1]
        before = list(range(-1, n - 1))
        heap = [(rank, k) for k in range(n - 1) if (rank := ranks.get((word[k], word[k + 1]))) is not None]
        heapq.heapify(heap)
        while heap:
            rank, k = heapq.heappop(heap)
            left, right_at = symbols[k], after[k]
            if left is None or right_at == -1:
                continue  # merged into its left neighbour, or the word's last symbol by now
            right = symbols[right_at]
            assert right is not None
            if ranks.get((left, right)) != rank:
                continue  # a neighbour merged since this pair was queued
            merged = left + right
            symbols[k], symbols[right_at] = merged, None
            following = after[right_at]
            after[k] = following
            if following != -1:
                before[following] = k
                if (r := ranks.get((merged, symbols[following]))) is not None:  # type: ignore[arg-type]
                    heapq.heappush(heap, (r, k))
            preceding = before[k]
            if preceding != -1 and (r := ranks.get((symbols[preceding], merged))) is not None:  # type: ignore[arg-type]
                heapq.heappush(heap, (r, preceding))
        return [t for t in symbols if t is not None]

    def encode(self, text: str) -> list[int]:
        return [i for piece in pre_tokenize(text) for i in self._merge(piece)]

    def token_bytes(self, token_id: int) -> bytes:
        if not 0 <= int(token_id) < len(self._bytes):
            raise TokenizerError(f"token id out of range 0..{len(self._bytes) - 1}")
        return self._bytes[int(token_id)]

    def decode(self, ids: Iterable[int]) -> str:
        return b"".join(self.token_bytes(i) for i in ids).decode("utf-8", errors="replace")

    def decode_stream(self, ids: Iterable[int]) -> Iterator[str]:
        """One piece per id (see `piece_decoder`), then U+FFFD if the ids end inside a character;
        joined, they are `decode(ids)`."""
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        for i in ids:
            yield decoder.decode(self.token_bytes(i))
        tail = decoder.decode(b"", final=True)
        if tail:
            yield tail

    def piece_decoder(self) -> Callable[[int], str]:
        """Token id -> the text it completes, for one generated sequence: "" while a
        character's bytes are still arriving, never half a character."""
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        return lambda i: decoder.decode(self.token_bytes(i))

    def to_dict(self) -> dict[str, Any]:
        return {"type": "bpe", "version": BPE_TOKENIZER_VERSION, "tokenizer": self.data}

    @classmethod
    def from_dict(cls, data: Any) -> BPETokenizer:
        if not isinstance(data, dict) or data.get("type") != "bpe":
            raise TokenizerError("tokenizer data is not a bpe tokenizer")
        if data.get("version") != BPE_TOKENIZER_VERSION:
            raise TokenizerError(f"bpe tokenizer version {data.get('version')!r} is not supported "
                                 f"(this textgen reads version {BPE_TOKENIZER_VERSION})")
        inner = data.get("tokenizer")
        if not isinstance(inner, dict):
            raise TokenizerError("tokenizer data is malformed: 'tokenizer' must be the tokenizer.json "
                                 "object")
        return cls(inner)
