"""Token arrays on disk: a flat `.bin` of token ids (uint16, or uint32 for a vocabulary above
65,535), memory-mapped, with a JSON sidecar.

The corpus is streamed twice (once to find its characters or build its tokenizer, once to
encode), so neither the text nor the token array has to fit in memory. Both passes hash every
file (corpus.py); if the two passes, or the sizes and modification times the cache key was made
from, disagree, a file changed while it was tokenized and nothing is written, so a token file
never disagrees with its sidecar. Arrays are cached under `<cache>/tokens/` keyed by the files'
paths, sizes and modification times, the encoding and the tokenizer (or the kind and settings a
new one is built with), so a second run on the same corpus starts at once; the sidecar records
the corpus fingerprint (`meta["fingerprint"]`) and how many characters each split spells (for
bits per character). The first `TRAIN_FRACTION` of the text trains, the rest validates.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from runtime.atomic_file import atomic_file
from runtime.regular_file import CONFIG_LIMIT
from runtime.tokenizer import CharTokenizer, Tokenizer, tokenizer_from_dict
from textgen_core.data.cache import cache_dir
from textgen_core.data.corpus import (
    Corpus,
    FileDigest,
    changed_while_read,
    corpus_fingerprint,
    iter_corpus_text,
)
from textgen_core.data.regular_file import read_regular_file
from textgen_core.data.tokenizers import (
    SegmentEncoder,
    TokenizerSpec,
    build_tokenizer,
    safe_cut_near,
    segments,
)
from textgen_core.errors import CorpusError, TokenizerError

TRAIN_FRACTION = 0.9
STORE_VERSION = 3  # 2: the sidecar records the corpus fingerprint; 3: and the split's characters


@dataclass
class TokenSplits:
    tokenizer: Tokenizer
    tokens: np.ndarray  # every token id, memory-mapped
    train: np.ndarray  # the first TRAIN_FRACTION of `tokens`
    val: np.ndarray  # the rest
    meta: dict[str, Any]  # also: num_chars, num_train_chars (the text each split holds)

    def split_chars(self, split: str) -> int:
        """How many characters of the corpus the tokens of `split` (val, train, all) spell."""
        total, train = int(self.meta["num_chars"]), int(self.meta["num_train_chars"])
        return {"train": train, "val": total - train, "all": total}[split]


def load_token_splits(corpus: Corpus, tokenizer: Tokenizer | None = None,
                      spec: TokenizerSpec | None = None) -> TokenSplits:
    """Token ids of `corpus`, split 90/10 (by characters, at a cut no tokenizer can see). A new
    tokenizer (`spec`, default char) is built from the corpus unless `tokenizer` is given
    (resuming, fine-tuning, evaluating); then a char tokenizer without `<unk>` must know every
    character, and a word tokenizer's unknown words are `<unk>`."""
    key, stats = _cache_key(corpus, tokenizer, spec or TokenizerSpec())
    directory = cache_dir() / "tokens"
    bin_path, meta_path = directory / f"{key}.bin", directory / f"{key}.json"
    meta = _read_meta(meta_path, key)
    if meta is None or not _matches(bin_path, meta):
        directory.mkdir(parents=True, exist_ok=True)
        meta = _encode_to_disk(corpus, tokenizer, spec or TokenizerSpec(), bin_path, key, stats)
        _write_json_atomic(meta_path, meta)
    tokens = np.memmap(bin_path, dtype=np.dtype(meta["dtype"]), mode="r")
    n_train = meta["num_train"]
    return TokenSplits(
        tokenizer=tokenizer_from_dict(meta["tokenizer"]) if tokenizer is None else tokenizer,
        tokens=tokens,
        train=tokens[:n_train],
        val=tokens[n_train:],
        meta=meta,
    )


def _cache_key(corpus: Corpus, tokenizer: Tokenizer | None, spec: TokenizerSpec
               ) -> tuple[str, list[tuple[int, int]]]:
    """The cache key, and the (size, mtime) of each file it was made from."""
    files, stats = [], []
    for path in corpus.files:
        try:
            st = path.stat()
        except OSError as exc:
            raise CorpusError(f"cannot read {path}: {exc.strerror or exc}") from None
        files.append([str(path.resolve()), st.st_size, st.st_mtime_ns])
        stats.append((st.st_size, st.st_mtime_ns))
    ident = {
        "version": STORE_VERSION,
        "files": files,
        "encoding": corpus.encoding,
        "format": corpus.format,
        # a given tokenizer, or how a new one is built (its kind and settings)
        "tokenizer": tokenizer.to_dict() if tokenizer else None,
        "build": None if tokenizer else spec.to_dict(),
        "train_fraction": TRAIN_FRACTION,
    }
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:24], stats


def _read_meta(meta_path: Path, key: str) -> dict[str, Any] | None:
    try:
        meta = json.loads(read_regular_file(meta_path, CONFIG_LIMIT).decode("utf-8"))
    except (CorpusError, ValueError):
        return None
    return meta if isinstance(meta, dict) and meta.get("key") == key else None


def _matches(bin_path: Path, meta: dict[str, Any]) -> bool:
    """The token file exists, is a regular file, and holds exactly the sidecar's token count."""
    try:
        st = os.stat(bin_path)
        itemsize = np.dtype(meta["dtype"]).itemsize
        return stat.S_ISREG(st.st_mode) and st.st_size == int(meta["num_tokens"]) * itemsize
    except (OSError, KeyError, TypeError, ValueError):
        return False


def _check_stats(corpus: Corpus, stats: list[tuple[int, int]], digests: list[FileDigest]) -> None:
    for path, before, seen in zip(corpus.files, stats, digests, strict=True):
        if before != (seen.size, seen.mtime_ns):
            raise changed_while_read(path)


def _check_same(corpus: Corpus, first: list[FileDigest], second: list[FileDigest]) -> None:
    for path, a, b in zip(corpus.files, first, second, strict=True):
        if (a.size, a.sha256) != (b.size, b.sha256):
            raise changed_while_read(path)


def _encode_to_disk(
    corpus: Corpus, tokenizer: Tokenizer | None, spec: TokenizerSpec, bin_path: Path, key: str,
    stats: list[tuple[int, int]],
) -> dict[str, Any]:
    chars: set[str] = set()
    num_chars = 0
    first: list[FileDigest] = []

    def first_pass() -> Iterator[str]:
        nonlocal num_chars
        for text in segments(chunk for _, chunk in iter_corpus_text(corpus, first)):
            chars.update(text)
            num_chars += len(text)
            yield text

    if tokenizer is None and spec.kind != "char":
        tokenizer = build_tokenizer(spec, first_pass())
    else:
        for _ in first_pass():
            pass
    _check_stats(corpus, stats, first)  # the key must describe the text that was read
    if num_chars == 0:
        raise CorpusError(f"corpus {corpus.name} is empty")
    if tokenizer is None:
        tokenizer = CharTokenizer(sorted(chars))
    elif isinstance(tokenizer, CharTokenizer) and not tokenizer.unk:
        unknown = sorted(chars - set(tokenizer.chars))
        if unknown:
            shown = ", ".join(repr(c) for c in unknown[:10])
            raise TokenizerError(
                f"corpus {corpus.name} has {len(unknown)} character(s) the checkpoint's tokenizer "
                f"does not know: {shown} (fine-tune with --new-tokens extend or unk)"
            )
    if tokenizer.vocab_size > np.iinfo(np.uint32).max:
        raise TokenizerError(f"a vocabulary of {tokenizer.vocab_size:,} tokens does not fit the "
                             "token store's 32-bit ids")
    dtype = np.uint16 if tokenizer.vocab_size <= np.iinfo(np.uint16).max else np.uint32
    encode = _char_encoder(tokenizer) if isinstance(tokenizer, CharTokenizer) \
        else SegmentEncoder(tokenizer).encode
    split_at = int(num_chars * TRAIN_FRACTION)
    second: list[FileDigest] = []
    seen_chars = written = 0
    num_train = num_train_chars = None
    with atomic_file(bin_path) as out:  # an error or Ctrl-C mid-encoding leaves no file
        for text in segments(chunk for _, chunk in iter_corpus_text(corpus, second)):
            parts = [text]
            if num_train is None and seen_chars + len(text) >= split_at:
                # the validation text starts at the cut nearest its share of the characters
                cut = split_at - seen_chars if isinstance(tokenizer, CharTokenizer) \
                    else safe_cut_near(text, split_at - seen_chars)
                parts = [text[:cut], text[cut:]]
            for n, part in enumerate(parts):
                if n == 1:
                    num_train, num_train_chars = written, seen_chars
                ids = np.asarray(encode(part), dtype=np.int64)
                if len(ids) and (ids.min() < 0 or ids.max() >= tokenizer.vocab_size):
                    raise changed_while_read(corpus.files[-1])  # a character the first pass did not see
                out.write(ids.astype(dtype).tobytes())
                written += len(ids)
                seen_chars += len(part)
        _check_same(corpus, first, second)
        if seen_chars != num_chars:
            raise changed_while_read(corpus.files[-1])
    assert num_train is not None
    assert num_train_chars is not None
    return {
        "version": STORE_VERSION,
        "key": key,
        "corpus": corpus.name,
        "files": [str(p) for p in corpus.files],
        "encoding": corpus.encoding,
        "dtype": np.dtype(dtype).name,
        "num_tokens": written,
        "num_chars": num_chars,
        "num_train_chars": num_train_chars,
        "fingerprint": corpus_fingerprint(corpus, second),
        "num_train": num_train,
        "train_fraction": TRAIN_FRACTION,
        "tokenizer": tokenizer.to_dict(),
    }


def _char_encoder(tokenizer: CharTokenizer) -> Callable[[str], np.ndarray]:
    """Characters to ids through a code-point table (-1: a character the tokenizer lacks)."""
    lookup = _code_point_lookup(tokenizer)

    def encode(text: str) -> np.ndarray:
        code_points = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
        if tokenizer.unk_id is not None:
            inside = code_points < len(lookup)
            ids = np.full(len(code_points), tokenizer.unk_id, dtype=np.int64)
            ids[inside] = lookup[code_points[inside]]
            return np.where(ids < 0, tokenizer.unk_id, ids)
        if len(code_points) and code_points.max() >= len(lookup):
            return np.full(1, -1)
        return lookup[code_points]

    return encode


def _code_point_lookup(tokenizer: CharTokenizer) -> np.ndarray:
    table = np.full(max(ord(c) for c in tokenizer.chars) + 1, -1, dtype=np.int64)
    for token_id, char in enumerate(tokenizer.chars):
        table[ord(char)] = token_id
    return table


def _write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    with atomic_file(path) as f:
        f.write(json.dumps(data, ensure_ascii=False).encode("utf-8"))
