"""Building a tokenizer from a corpus, for `--tokenizer char|word|bpe [--vocab-size N]`.

`char`: every distinct character of the corpus. `word`: the `--vocab-size` most frequent words
(split by runtime/word_tokenizer.py's pattern, case kept), the rest `<unk>`; a line break is its
own token. `bpe`: byte-level BPE trained with the Hugging Face `tokenizers` library and kept as
its tokenizer.json data; the runtime encodes it without that library (runtime/bpe_tokenizer.py).

The corpus arrives as chunks of text cut anywhere; `segments` re-cuts them where no tokenizer
kind can tell the cut from the whole text, so each segment is encoded on its own.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from runtime.bpe_tokenizer import BPETokenizer
from runtime.tokenizer import KINDS, CharTokenizer, Tokenizer
from runtime.word_tokenizer import SPECIALS, WordTokenizer, split_words
from textgen_core.errors import ConfigError, TokenizerError

DEFAULT_VOCAB_SIZE = {"word": 8192, "bpe": 2048}
BYTE_TOKENS = 256
MAX_VOCAB_SIZE = 1 << 20
# Where a cut is invisible to every kind: before a space that starts a word after a word, or
# after a line break between two non-blank characters (the pieces of GPT-2's pattern, and the
# words and line breaks of the word kind, end there either way).
_SAFE_CUT = re.compile(r"(?<=\S)(?= \S)|(?<=\S\n)(?=\S)")
_SEARCH_TAIL = 1 << 16


@dataclass(frozen=True)
class TokenizerSpec:
    """Which tokenizer a fresh run builds from its corpus."""

    kind: str = "char"
    vocab_size: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(f"--tokenizer {self.kind!r} is unknown; choose from: {', '.join(KINDS)}")
        size = self.vocab_size
        if size is None:
            return
        if self.kind == "char":
            raise ConfigError("--vocab-size applies to --tokenizer word and bpe (a char vocabulary "
                              "is every character of the corpus)")
        if isinstance(size, bool) or not isinstance(size, int):
            raise ConfigError(f"--vocab-size must be an integer, got {size!r}")
        least = len(SPECIALS) + 1 if self.kind == "word" else BYTE_TOKENS + 1
        if size < least:
            what = (f"the {len(SPECIALS)} special tokens ({', '.join(SPECIALS)}) and one word"
                    if self.kind == "word" else f"the {BYTE_TOKENS} byte tokens and one merge")
            raise ConfigError(f"--vocab-size {size} is too small for --tokenizer {self.kind}: it needs "
                              f"at least {least} ({what})")
        if size > MAX_VOCAB_SIZE:
            raise ConfigError(f"--vocab-size {size} is larger than {MAX_VOCAB_SIZE:,}")

    @property
    def size(self) -> int | None:
        """The vocabulary size asked for, or the kind's default."""
        return self.vocab_size if self.vocab_size is not None else DEFAULT_VOCAB_SIZE.get(self.kind)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"kind": self.kind, "vocab_size": self.size}
        if self.kind == "bpe":  # another library version may learn other merges
            data["library"] = f"tokenizers {_library().__version__}"
        return data


def _library() -> Any:
    """The Hugging Face `tokenizers` package, which trains bpe (the runtime never needs it)."""
    try:
        import tokenizers
    except ImportError:
        raise ConfigError("--tokenizer bpe needs the `tokenizers` package: pip install "
                          "'tokenizers>=0.19'") from None
    return tokenizers


def segments(chunks: Iterable[str]) -> Iterator[str]:
    """The text of `chunks`, re-cut only where a cut cannot change any tokenizer's ids."""
    buffer = ""
    for chunk in chunks:
        buffer += chunk
        cut = None
        for match in _SAFE_CUT.finditer(buffer, max(0, len(buffer) - _SEARCH_TAIL)):
            cut = match.start()
        if cut:
            yield buffer[:cut]
            buffer = buffer[cut:]
    if buffer:
        yield buffer


def safe_cut_near(text: str, position: int) -> int:
    """The cut in `text` closest to `position` (0 when there is none)."""
    best = 0
    for match in _SAFE_CUT.finditer(text):
        if abs(match.start() - position) < abs(best - position):
            best = match.start()
    return best


def build_tokenizer(spec: TokenizerSpec, texts: Iterable[str]) -> Tokenizer:
    """A new tokenizer of `spec.kind` learned from `texts` (segments of the corpus)."""
    if spec.kind == "char":
        chars: set[str] = set()
        for text in texts:
            chars.update(text)
        return CharTokenizer(sorted(chars))
    size = spec.size
    assert size is not None
    if spec.kind == "word":
        counts: Counter[str] = Counter()
        for text in texts:
            counts.update(w for line in text.split("\n") for w in split_words(line))
        if not counts:
            raise TokenizerError("the corpus has no words for --tokenizer word")
        kept = sorted(counts, key=lambda w: (-counts[w], w))[: size - len(SPECIALS)]
        return WordTokenizer([*SPECIALS, *kept], lowercase=False, split="lines")
    return _train_bpe(size, texts)


def _train_bpe(vocab_size: int, texts: Iterable[str]) -> BPETokenizer:
    library = _library()
    models, pre_tokenizers = library.models, library.pre_tokenizers
    hf = library.Tokenizer(models.BPE())
    hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    hf.decoder = library.decoders.ByteLevel()
    trainer = library.trainers.BpeTrainer(vocab_size=vocab_size, show_progress=False, special_tokens=[],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    hf.train_from_iterator(texts, trainer)
    return BPETokenizer(json.loads(hf.to_str()))


class SegmentEncoder:
    """Encodes corpus segments with a tokenizer, as fast as its kind allows: bpe through the
    `tokenizers` library (the same ids as the runtime's encoder, tested), the others directly."""

    def __init__(self, tokenizer: Tokenizer) -> None:
        self.tokenizer = tokenizer
        self._hf = None
        if isinstance(tokenizer, BPETokenizer):
            self._hf = _library().Tokenizer.from_str(json.dumps(tokenizer.data))

    def encode(self, text: str) -> list[int]:
        if self._hf is not None:
            return list(self._hf.encode(text).ids)
        return self.tokenizer.encode(text)


NEW_TOKENS = ("extend", "unk")


def run_tokenizer_spec(run: dict[str, Any], source: dict[str, Any] | None, mode: str | None
                       ) -> TokenizerSpec:
    """The tokenizer settings of a run (`--tokenizer --vocab-size --new-tokens`). `--resume`
    and `--init-from` (`mode`, with the checkpoint `source`) keep the checkpoint's tokenizer."""
    kind, size, new = run.get("tokenizer"), run.get("vocab_size"), run.get("new_tokens")
    if new is not None and mode != "--init-from":
        raise ConfigError("--new-tokens applies to fine-tuning (--init-from CKPT)")
    if new is not None and new not in NEW_TOKENS:
        raise ConfigError(f"--new-tokens {new!r} is unknown; choose from: {', '.join(NEW_TOKENS)}")
    if source is None:
        return TokenizerSpec(kind or "char", size)
    saved = source.get("tokenizer", {}).get("type") if isinstance(source.get("tokenizer"), dict) else None
    if kind is not None and kind != saved:
        raise ConfigError(f"{mode} keeps the checkpoint's {saved} tokenizer; drop --tokenizer {kind}")
    if size is not None:
        raise ConfigError(f"{mode} keeps the checkpoint's vocabulary; drop --vocab-size")
    return TokenizerSpec()
