"""The GAN's word vocabulary: ids, `<unk>`, JSON round trip, readable decoding."""

import json

import pytest

from runtime.errors import TokenizerError
from runtime.tokenizer import tokenizer_from_dict
from runtime.word_tokenizer import END_ID, UNK_ID, WordTokenizer, detokenize


def _tokenizer() -> WordTokenizer:
    return WordTokenizer(["<end>", "<unk>", "the", "king", ",", ".", "do", "n't", "'s", "("])


def test_unknown_words_map_to_unk_and_case_folds() -> None:
    tok = _tokenizer()
    assert tok.encode_words(["The", "KING", "queen"]) == [2, 3, UNK_ID]


def test_decode_stops_at_end_and_joins_punctuation() -> None:
    tok = _tokenizer()
    ids = [*tok.encode_words(["the", "king", ",", "do", "n't", "."]), END_ID, 2, 3]
    assert tok.decode(ids) == "the king, don't."
    assert detokenize(["(", "the", "king", "'s", ")", "``", "do", "''"]) == '(the king\'s) "do"'


def test_round_trip_through_json_and_registry() -> None:
    tok = _tokenizer()
    data = json.loads(json.dumps(tok.to_dict()))
    again = tokenizer_from_dict(data)
    assert isinstance(again, WordTokenizer)
    assert again.words == tok.words and again.lowercase


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"type": "word", "version": 1, "words": ["a", "b"]}, "starts with <end> and <unk>"),
        ({"type": "word", "version": 1, "words": ["<end>", "<unk>", "a", "a"]}, "words repeat"),
        ({"type": "word", "version": 1, "words": ["<end>", "<unk>", "a b"]}, "without spaces"),
        ({"type": "word", "version": 9, "words": ["<end>", "<unk>"]}, "version 9"),
    ],
)
def test_malformed_vocabulary_is_refused(data: dict, message: str) -> None:
    with pytest.raises(TokenizerError, match=message):
        tokenizer_from_dict(data)


def test_out_of_range_id_is_an_error() -> None:
    with pytest.raises(TokenizerError, match="out of range"):
        _tokenizer().decode([99])
