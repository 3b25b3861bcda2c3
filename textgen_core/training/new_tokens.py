"""`--init-from CKPT --new-tokens extend|unk`: fine-tuning on text with characters (or words)
the checkpoint's tokenizer has never seen.

`extend` appends the new characters (a char tokenizer) or the new words (a word tokenizer,
most frequent first) to the vocabulary, with one new embedding row and one new output row each;
`unk` maps them to an `<unk>` token, adding one to a char tokenizer that has none (a word
tokenizer always has one). A new row starts as the mean of the trained rows, so a new token
begins as an average one. Old ids keep their numbers. A bpe tokenizer needs neither: every byte
has a token. The layer stack's vocabulary is spread over its layer specs, so for a stack only
the choices that add no rows are offered.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import torch

from runtime.bpe_tokenizer import BPETokenizer
from runtime.tokenizer import CharTokenizer, tokenizer_from_dict
from runtime.word_tokenizer import WordTokenizer, split_words
from textgen_core.data.corpus import iter_corpus_text, resolve_corpus
from textgen_core.data.tokenizers import segments
from textgen_core.errors import ConfigError

VOCAB_ROWS = ("wte.weight", "lm_head.weight")  # the GPT's tensors with one row per token


def with_new_tokens(payload: dict[str, Any], mode: str, corpus: str, encoding: str | None
                    ) -> dict[str, Any]:
    """`payload` (a loaded checkpoint) with its tokenizer and weights grown for `corpus`."""
    tokenizer = tokenizer_from_dict(payload["tokenizer"])
    if isinstance(tokenizer, BPETokenizer):
        return payload  # byte fallback: nothing is unknown
    texts = segments(chunk for _, chunk in iter_corpus_text(resolve_corpus(corpus, encoding)))
    if isinstance(tokenizer, CharTokenizer):
        seen: set[str] = set()
        for text in texts:
            seen.update(text)
        new = sorted(seen - set(tokenizer.chars))
        if mode == "unk":
            grown = CharTokenizer(tokenizer.chars, unk=True) if new else tokenizer
        else:
            grown = CharTokenizer([*tokenizer.chars, *new], unk=tokenizer.unk)
    else:
        assert isinstance(tokenizer, WordTokenizer)
        if mode == "unk":
            return payload  # unknown words are <unk> already
        counts: Counter[str] = Counter()
        for text in texts:
            counts.update(w for line in text.split("\n") for w in split_words(line))
        known = set(tokenizer.words)
        new = sorted((w for w in counts if w not in known), key=lambda w: (-counts[w], w))
        grown = WordTokenizer([*tokenizer.words, *new], lowercase=tokenizer.lowercase,
                              split=tokenizer.split)
    if grown.vocab_size == tokenizer.vocab_size:
        return payload
    if payload["kind"] != "gpt":
        raise ConfigError(f"--new-tokens {mode} would add {grown.vocab_size - tokenizer.vocab_size} "
                          f"token(s), which a {payload['kind']} checkpoint cannot grow; use "
                          "--tokenizer bpe for a fresh model, or fine-tune a gpt")
    old_ids = _row_sources(tokenizer, grown)
    state = dict(payload["model"])
    for name in VOCAB_ROWS:
        weight = state[name]
        mean = weight.mean(dim=0, keepdim=True)
        rows = [weight[i:i + 1] if i is not None else mean for i in old_ids]
        state[name] = torch.cat(rows, dim=0).contiguous()
    return {**payload, "model": state, "tokenizer": grown.to_dict(),
            "model_config": {**payload["model_config"], "vocab_size": grown.vocab_size}}


def _row_sources(old: CharTokenizer | WordTokenizer, new: CharTokenizer | WordTokenizer
                 ) -> list[int | None]:
    """For each new id, the old id whose row it keeps (None: a new row)."""
    if isinstance(old, CharTokenizer) and isinstance(new, CharTokenizer):
        index = {c: i for i, c in enumerate(old.chars)}
        sources: list[int | None] = [index.get(c) for c in new.chars]
        if new.unk:
            sources.append(old.unk_id)
        return sources
    assert isinstance(old, WordTokenizer)
    return [*range(old.vocab_size), *[None] * (new.vocab_size - old.vocab_size)]
