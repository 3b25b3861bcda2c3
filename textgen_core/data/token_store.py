"""Token arrays on disk: a flat `.bin` of token ids, memory-mapped, with a JSON sidecar.

The corpus is streamed twice (once to find its characters, once to encode), so neither the text
nor the token array has to fit in memory. Arrays are cached under `<cache>/tokens/` keyed by the
files' paths, sizes and modification times, the encoding and the tokenizer, so a second run on
the same corpus starts at once. The first `TRAIN_FRACTION` of the tokens train, the rest validate.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from runtime.atomic_file import atomic_file
from runtime.tokenizer import CharTokenizer
from textgen_core.data.cache import cache_dir
from textgen_core.data.corpus import Corpus, iter_corpus_text
from textgen_core.errors import CorpusError, TokenizerError

TRAIN_FRACTION = 0.9
STORE_VERSION = 1


@dataclass
class TokenSplits:
    tokenizer: CharTokenizer
    tokens: np.ndarray  # every token id, memory-mapped
    train: np.ndarray  # the first TRAIN_FRACTION of `tokens`
    val: np.ndarray  # the rest
    meta: dict[str, Any]


def load_token_splits(corpus: Corpus, tokenizer: CharTokenizer | None = None) -> TokenSplits:
    """Token ids of `corpus`, split 90/10. A new character tokenizer is built from the corpus
    unless `tokenizer` is given (fine-tuning), in which case every character must be known."""
    key = _cache_key(corpus, tokenizer)
    directory = cache_dir() / "tokens"
    bin_path, meta_path = directory / f"{key}.bin", directory / f"{key}.json"
    meta = _read_meta(meta_path, key)
    if meta is None or not bin_path.exists():
        directory.mkdir(parents=True, exist_ok=True)
        meta = _encode_to_disk(corpus, tokenizer, bin_path, key)
        _write_json_atomic(meta_path, meta)
    tokens = np.memmap(bin_path, dtype=np.dtype(meta["dtype"]), mode="r")
    n_train = meta["num_train"]
    return TokenSplits(
        tokenizer=CharTokenizer.from_dict(meta["tokenizer"]),
        tokens=tokens,
        train=tokens[:n_train],
        val=tokens[n_train:],
        meta=meta,
    )


def _cache_key(corpus: Corpus, tokenizer: CharTokenizer | None) -> str:
    files = []
    for path in corpus.files:
        stat = path.stat()
        files.append([str(path.resolve()), stat.st_size, stat.st_mtime_ns])
    ident = {
        "version": STORE_VERSION,
        "files": files,
        "encoding": corpus.encoding,
        "tokenizer": tokenizer.to_dict() if tokenizer else None,
        "train_fraction": TRAIN_FRACTION,
    }
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:24]


def _read_meta(meta_path: Path, key: str) -> dict[str, Any] | None:
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) and meta.get("key") == key else None


def _encode_to_disk(
    corpus: Corpus, tokenizer: CharTokenizer | None, bin_path: Path, key: str
) -> dict[str, Any]:
    chars: set[str] = set()
    num_chars = 0
    for _, chunk in iter_corpus_text(corpus):
        chars.update(chunk)
        num_chars += len(chunk)
    if num_chars == 0:
        raise CorpusError(f"corpus {corpus.name} is empty")
    if tokenizer is None:
        tokenizer = CharTokenizer(sorted(chars))
    else:
        unknown = sorted(chars - set(tokenizer.chars))
        if unknown:
            shown = ", ".join(repr(c) for c in unknown[:10])
            raise TokenizerError(
                f"corpus {corpus.name} has {len(unknown)} character(s) the checkpoint's tokenizer "
                f"does not know: {shown}"
            )
    dtype = np.uint16 if tokenizer.vocab_size <= np.iinfo(np.uint16).max else np.uint32
    lookup = _code_point_lookup(tokenizer)
    with atomic_file(bin_path) as out:  # an error or Ctrl-C mid-encoding leaves no partial file
        for _, chunk in iter_corpus_text(corpus):
            code_points = np.frombuffer(chunk.encode("utf-32-le"), dtype=np.uint32)
            out.write(lookup[code_points].astype(dtype).tobytes())
    num_train = int(num_chars * TRAIN_FRACTION)
    return {
        "version": STORE_VERSION,
        "key": key,
        "corpus": corpus.name,
        "files": [str(p) for p in corpus.files],
        "encoding": corpus.encoding,
        "dtype": np.dtype(dtype).name,
        "num_tokens": num_chars,
        "num_train": num_train,
        "train_fraction": TRAIN_FRACTION,
        "tokenizer": tokenizer.to_dict(),
    }


def _code_point_lookup(tokenizer: CharTokenizer) -> np.ndarray:
    table = np.zeros(max(ord(c) for c in tokenizer.chars) + 1, dtype=np.int64)
    for token_id, char in enumerate(tokenizer.chars):
        table[ord(char)] = token_id
    return table


def _write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    with atomic_file(path) as f:
        f.write(json.dumps(data, ensure_ascii=False).encode("utf-8"))
