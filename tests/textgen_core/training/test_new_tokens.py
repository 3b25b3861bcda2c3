"""`--new-tokens extend|unk` grows a checkpoint's vocabulary for a fine-tuning corpus: old ids keep
their rows, new ones start at the mean row, and what cannot grow says so in one line."""

from pathlib import Path

import pytest
import torch

from runtime.tokenizer import CharTokenizer
from runtime.word_tokenizer import WordTokenizer
from textgen_core.errors import ConfigError
from textgen_core.models.gpt import GPT, GPTConfig
from textgen_core.training.new_tokens import with_new_tokens


def _payload(tokenizer, kind: str = "gpt") -> dict:
    torch.manual_seed(0)
    config = GPTConfig(vocab_size=tokenizer.vocab_size, block_size=8, n_layer=1, n_head=2, n_embd=8)
    return {"kind": kind, "model_config": config.to_dict(), "tokenizer": tokenizer.to_dict(),
            "model": GPT(config).state_dict()}


def test_word_extend_appends_new_words_most_frequent_first(tmp_path: Path) -> None:
    corpus = tmp_path / "c.txt"
    corpus.write_text("the king\nthe queen queen\nzounds\n", encoding="utf-8")
    words = WordTokenizer(["<end>", "<unk>", "the", "king"], lowercase=False, split="lines")
    payload = _payload(words)
    grown = with_new_tokens(payload, "extend", str(corpus), None)
    assert grown["tokenizer"]["words"] == ["<end>", "<unk>", "the", "king", "queen", "zounds"]
    wte = grown["model"]["wte.weight"]
    assert wte.shape[0] == 6 == grown["model_config"]["vocab_size"]
    assert torch.equal(wte[:4], payload["model"]["wte.weight"])
    assert torch.allclose(wte[4], payload["model"]["wte.weight"].mean(dim=0))
    assert with_new_tokens(payload, "unk", str(corpus), None) is payload  # <unk> is there already


def test_char_unk_moves_nothing_and_adds_one_row(tmp_path: Path) -> None:
    corpus = tmp_path / "c.txt"
    corpus.write_text("abcé", encoding="utf-8")
    payload = _payload(CharTokenizer(list("abc")))
    grown = with_new_tokens(payload, "unk", str(corpus), None)
    assert grown["tokenizer"] == {"type": "char", "version": 1, "chars": ["a", "b", "c"], "unk": True}
    assert CharTokenizer.from_dict(grown["tokenizer"]).encode("aé") == [0, 3]
    again = with_new_tokens(grown, "extend", str(corpus), None)  # extend keeps <unk> last
    assert again["tokenizer"]["chars"] == ["a", "b", "c", "é"] and again["tokenizer"]["unk"]
    assert torch.equal(again["model"]["lm_head.weight"][4], grown["model"]["lm_head.weight"][3])


def test_a_stack_cannot_grow_rows(tmp_path: Path) -> None:
    corpus = tmp_path / "c.txt"
    corpus.write_text("abcé", encoding="utf-8")
    with pytest.raises(ConfigError, match="cannot grow"):
        with_new_tokens(_payload(CharTokenizer(list("abc")), kind="stack"), "extend", str(corpus), None)
