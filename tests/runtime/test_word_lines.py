"""A language model's word vocabulary (`--tokenizer word`): it splits running text itself, keeps
line breaks as `<end>`, maps rare words to `<unk>` and decodes readably, piece by piece."""

import json

import pytest

from runtime.errors import TokenizerError
from runtime.tokenizer import line_start_ids, tokenizer_from_dict
from runtime.word_tokenizer import END_ID, UNK_ID, WordTokenizer, split_words


def _tokenizer() -> WordTokenizer:
    return WordTokenizer(["<end>", "<unk>", "KING", "RICHARD", ":", "Now", "is", "the", "winter", ",",
                          "don't", "(", ")", "--", "..."], lowercase=False, split="lines")


def test_split_keeps_inner_apostrophes_and_punctuation_runs() -> None:
    assert split_words("Now, don't -- o'er... (yes)") == ["Now", ",", "don't", "--", "o'er", "...", "(",
                                                         "yes", ")"]


def test_lines_and_unknown_words_round_trip_readably() -> None:
    tok = _tokenizer()
    text = "KING RICHARD:\nNow is the winter, don't (the winter) -- Zounds...\n"
    ids = tok.encode(text)
    assert ids.count(END_ID) == 2 and ids.count(UNK_ID) == 1
    assert tok.decode(ids) == "KING RICHARD:\nNow is the winter, don't (the winter)--<unk>...\n"
    assert tok.unknown_word_chars(text) == len("Zounds")


def test_pieces_join_to_the_decoded_text_and_space_from_a_prompt() -> None:
    tok = _tokenizer()
    ids = tok.encode("Now is the winter,\nKING")
    assert "".join(tok.decode_stream(ids)) == tok.decode(ids)
    piece = tok.piece_decoder()  # continuing a prompt: the first word is spaced from it
    assert [piece(i) for i in tok.encode("the winter, don't")] == [" the", " winter", ",", " don't"]
    assert line_start_ids(tok) == [END_ID]


def test_version_2_round_trips_and_the_gan_format_is_unchanged() -> None:
    tok = _tokenizer()
    data = json.loads(json.dumps(tok.to_dict()))
    assert data["version"] == 2 and data["split"] == "lines"
    again = tokenizer_from_dict(data)
    assert again.encode("Now is") == tok.encode("Now is")
    gan = WordTokenizer(["<end>", "<unk>", "the"])
    assert gan.to_dict() == {"type": "word", "version": 1, "lowercase": True, "words": ["<end>", "<unk>", "the"]}
    with pytest.raises(TokenizerError, match="does not encode running text"):
        gan.encode("the")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"type": "word", "version": 2, "words": ["<end>", "<unk>"]}, "names its 'split'"),
        ({"type": "word", "version": 2, "split": "sentences", "words": ["<end>", "<unk>"]}, "is unknown"),
    ],
)
def test_malformed_lines_vocabulary_is_refused(data: dict, message: str) -> None:
    with pytest.raises(TokenizerError, match=message):
        tokenizer_from_dict(data)
