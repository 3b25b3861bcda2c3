import pytest

from runtime.yoke_spec import YokeSpec, parse_yoke


@pytest.mark.parametrize(
    ("text", "spec"),
    [
        ("", None),
        ("1:16", YokeSpec(1, 16)),
        ("0:8:no-residual", YokeSpec(0, 8, residual=False)),
        ("2:4:stateful", YokeSpec(2, 4, stateful=True)),
        ("2:4:stateful:no-residual", YokeSpec(2, 4, residual=False, stateful=True)),
    ],
)
def test_valid_specs_round_trip(text: str, spec: YokeSpec | None) -> None:
    assert parse_yoke(text, n_layer=3) == spec
    if spec is not None:
        assert parse_yoke(spec.to_text(), n_layer=3) == spec


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("3:16", "--yoke layer 3 is out of range: --n-layer 3 has layers 0..2"),
        ("-1:16", "--yoke layer -1 is out of range"),
        ("1:0", "--yoke hidden size must be a positive integer, got 0"),
        ("1", "--yoke must be LAYER:HIDDEN[:no-residual][:stateful], got '1'"),
        ("one:16", "with whole numbers"),
        ("1:16:wide", "--yoke option 'wide' is unknown; options: no-residual, stateful"),
        ("1:16:stateful:stateful", "--yoke repeats an option"),
    ],
)
def test_bad_specs_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=r"^--yoke") as info:
        parse_yoke(text, n_layer=3)
    assert message in str(info.value)
