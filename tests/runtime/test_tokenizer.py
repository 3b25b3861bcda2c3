import pytest
from hypothesis import given
from hypothesis import strategies as st

from runtime.errors import TokenizerError
from runtime.tokenizer import CharTokenizer, tokenizer_from_dict

ALPHABET = "abcdefghij \n.,;:'!?XYZ\u00e9\u4e2d"
TOKENIZER = CharTokenizer.from_text(ALPHABET)


@given(st.text(alphabet=ALPHABET))
def test_round_trip_any_text_of_known_characters(text: str) -> None:
    assert TOKENIZER.decode(TOKENIZER.encode(text)) == text


def test_ids_are_sorted_by_code_point() -> None:
    tok = CharTokenizer.from_text("cab")
    assert tok.encode("abc") == [0, 1, 2]


def test_json_round_trip_keeps_ids() -> None:
    data = TOKENIZER.to_dict()
    assert data["type"] == "char"
    again = tokenizer_from_dict(data)
    assert again.encode(ALPHABET) == TOKENIZER.encode(ALPHABET)


def test_unknown_characters_are_named() -> None:
    with pytest.raises(TokenizerError, match=r"2 character\(s\).*'#'.*'@'"):
        TOKENIZER.encode("abc@#")


@pytest.mark.parametrize(
    "data",
    [
        {"type": "char", "version": 1, "chars": ["a", "a"]},
        {"type": "char", "version": 1, "chars": ["ab"]},
        {"type": "char", "version": 99, "chars": ["a"]},
        {"type": "bpe"},
        ["a", "b"],
    ],
)
def test_malformed_data_is_refused(data: object) -> None:
    with pytest.raises(TokenizerError):
        tokenizer_from_dict(data)
