"""The runtime's pure-Python byte-level BPE gives the `tokenizers` library's ids, and streams
text without ever splitting a character."""

import json
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest

from runtime.bpe_tokenizer import BPETokenizer, byte_to_unicode, pre_tokenize
from runtime.errors import TokenizerError
from runtime.tokenizer import tokenizer_from_dict
from textgen_core.data.tokenizers import TokenizerSpec, build_tokenizer

tokenizers = pytest.importorskip("tokenizers")

TRAIN_TEXT = ("First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n"
              "First Citizen:\nYou are all resolved rather to die than to famish?\n") * 30
HELD_OUT = [
    "MENENIUS:\nWhy, masters, my good friends, mine honest neighbours,\n",
    "  leading spaces,\ttabs\t\tand   runs   of spaces  \n\n\n",
    "I'll don't we've they're you'd she's I'm 'tis o'er -- ... !!! ?!",
    "Zyzzogeton quixotic xylophones 1234567 3.14159 1,000,000",
    "café naïve résumé Ærø Ελληνικά русский 日本語 한국어 עברית",
    "emoji 😀👍🏽🇫🇷 and a family 👨‍👩‍👧 and \u200b zero width \u00a0nbsp\u2028sep",
    "\x1c\x1d\x85 odd whitespace and \x00 control \ufeff bom",
    "",
    " ",
    "\n",
]


@pytest.fixture(scope="module")
def trained() -> tuple[BPETokenizer, object]:
    ours = build_tokenizer(TokenizerSpec("bpe", 400), [TRAIN_TEXT])
    assert isinstance(ours, BPETokenizer)
    return ours, tokenizers.Tokenizer.from_str(json.dumps(ours.data))


@pytest.mark.parametrize("text", HELD_OUT)
def test_ids_equal_the_library_on_held_out_text(trained, text: str) -> None:
    ours, library = trained
    ids = ours.encode(text)
    assert ids == library.encode(text).ids
    assert ours.decode(ids) == text == library.decode(ids)


def test_pre_tokenizer_matches_the_library_for_each_character_between_letters(trained) -> None:
    """Every assigned character up to U+3000 (a character that Python's Unicode tables do not
    know yet may be classed otherwise by the library's newer ones)."""
    _, library = trained
    to_byte = {c: b for b, c in byte_to_unicode().items()}
    for code in range(0x3000):
        if unicodedata.category(chr(code)) == "Cn":
            continue
        text = f"a{chr(code)} b{chr(code)}{chr(code)}1 {chr(code)}"
        want = [bytes(to_byte[c] for c in piece).decode("utf-8")
                for piece, _ in library.pre_tokenizer.pre_tokenize_str(text)]
        assert pre_tokenize(text) == want, hex(code)


def test_streaming_never_yields_half_a_character(trained) -> None:
    ours, _ = trained
    text = "naïve 😀 日本"
    ids = ours.encode(text)
    pieces = list(ours.decode_stream(ids))
    assert "".join(pieces) == text
    assert all("\ufffd" not in p for p in pieces)
    decoder = ours.piece_decoder()
    assert "".join(decoder(i) for i in ids) == text
    emoji = ours.encode("😀")
    assert len(emoji) == 4  # four bytes, none merged in this vocabulary
    fresh = ours.piece_decoder()
    assert [fresh(i) for i in emoji] == ["", "", "", "😀"]


def test_every_byte_has_a_token_so_nothing_is_unknown(trained) -> None:
    ours, _ = trained
    assert ours.unknown_characters("\U0001f600 ☃") == []


def test_round_trip_through_json_and_registry(trained) -> None:
    ours, _ = trained
    again = tokenizer_from_dict(json.loads(json.dumps(ours.to_dict())))
    assert isinstance(again, BPETokenizer)
    assert again.encode(HELD_OUT[0]) == ours.encode(HELD_OUT[0])


def _broken(ours: BPETokenizer, **changes) -> dict:
    data = json.loads(json.dumps(ours.to_dict()))
    data["tokenizer"]["model"].update(changes)
    return data


def test_malformed_data_is_refused(trained) -> None:
    ours, _ = trained
    vocab = dict(ours.data["model"]["vocab"])
    with pytest.raises(TokenizerError, match="version 7"):
        tokenizer_from_dict({**ours.to_dict(), "version": 7})
    with pytest.raises(TokenizerError, match="once each"):
        tokenizer_from_dict(_broken(ours, vocab={**vocab, "zz": 0}))
    with pytest.raises(TokenizerError, match="256"):
        tokenizer_from_dict(_broken(ours, vocab={"a": 0}, merges=[]))
    with pytest.raises(TokenizerError, match="merge 0"):
        tokenizer_from_dict(_broken(ours, merges=[["no", "such"]]))
    with pytest.raises(TokenizerError, match="out of range"):
        ours.decode([ours.vocab_size])


def test_the_runtime_encodes_without_the_tokenizers_library(trained, tmp_path) -> None:
    ours, library = trained
    data = tmp_path / "bpe.json"
    data.write_text(json.dumps(ours.to_dict()), encoding="utf-8")
    script = (
        "import json, sys\n"
        "sys.modules['tokenizers'] = None  # any import of it fails\n"
        "from runtime.tokenizer import tokenizer_from_dict\n"
        "tok = tokenizer_from_dict(json.load(open(sys.argv[1], encoding='utf-8')))\n"
        "print(json.dumps(tok.encode(sys.argv[2])))\n"
    )
    text = HELD_OUT[4]
    out = subprocess.run([sys.executable, "-c", script, str(data), text], capture_output=True,
                         text=True, check=True, cwd=Path(__file__).resolve().parents[2], timeout=60)
    assert json.loads(out.stdout) == library.encode(text).ids
