"""Layer-list resolution and the documented errors of invalid stacks."""

from __future__ import annotations

from pathlib import Path

import pytest

from textgen_core.errors import ConfigError
from textgen_core.models.stack.model import Stack
from textgen_core.models.stack.recurrent import LSTM, RNN
from textgen_core.models.stack.spec import StackConfig, read_layers_file

EXAMPLES = Path(__file__).resolve().parents[4] / "examples" / "stacks"


def _config(layers: list[dict], **kw: object) -> StackConfig:
    return StackConfig(**{"vocab_size": 30, "block_size": 16, "n_embd": 32, "n_head": 4, **kw},
                       layers=layers, source="s.toml")


def test_sizes_default_from_model_settings_and_the_previous_layer() -> None:
    layers = _config([{"type": "Embedding"}, {"type": "PositionalEmbedding"},
                      {"type": "LSTM", "hidden_size": 48}, {"type": "TemporalDense"},
                      {"type": "CrossEntropyLoss"}]).layers
    assert layers[0] == {"type": "Embedding", "vocab_size": 30, "n_embd": 32}
    assert layers[1] == {"type": "PositionalEmbedding", "block_size": 16, "n_embd": 32}
    assert layers[2] == {"type": "LSTM", "in_features": 32, "hidden_size": 48}
    assert layers[3] == {"type": "TemporalDense", "in_features": 48, "out_features": 30}


def test_a_resolved_config_round_trips_through_plain_data() -> None:
    config = _config([{"type": "Embedding"}, {"type": "Block"}, {"type": "Dropout", "p": 0.1},
                      {"type": "RNN"}, {"type": "LSTM"}, {"type": "TemporalDense"},
                      {"type": "CrossEntropyLoss"}])
    again = StackConfig.from_dict(config.to_dict())
    assert again.to_dict() == config.to_dict()
    # RNN and LSTM stay distinct (the original saved both under one id and reloaded RNNs as LSTMs).
    built = [type(m) for m in Stack(again).layers]
    assert (built[3], built[4]) == (RNN, LSTM)


@pytest.mark.parametrize(("layers", "message"), [
    ([], "s.toml: no [[layers]] tables"),
    ([{"type": "LSTM"}, {"type": "CrossEntropyLoss"}], "the first layer must be Embedding, got LSTM"),
    ([{"type": "Embedding"}, {"type": "TemporalDense"}], "the last layer must be CrossEntropyLoss"),
    ([{"type": "Embedding"}, {"type": "Conv1d"}, {"type": "CrossEntropyLoss"}],
     "layer 2: unknown type 'Conv1d'; choose from: Embedding"),
    ([{"type": "Embedding"}, {"type": "Block", "heads": 2}, {"type": "TemporalDense"},
      {"type": "CrossEntropyLoss"}], "layer 2 (Block): unknown parameter(s) 'heads'; Block takes: n_embd"),
    ([{"type": "Embedding"}, {"type": "TemporalDense", "in_features": 64}, {"type": "CrossEntropyLoss"}],
     "layer 2 (TemporalDense): in_features 64 does not match the output size 32 of layer 1 (Embedding)"),
    ([{"type": "Embedding"}, {"type": "LSTM"}, {"type": "CrossEntropyLoss"}],
     "layer 3 (CrossEntropyLoss): needs 30 logits (the vocabulary), but layer 2 (LSTM) outputs 32"),
    ([{"type": "Embedding"}, {"type": "Block", "n_head": 5}, {"type": "TemporalDense"},
      {"type": "CrossEntropyLoss"}], "n_embd (32) must be divisible by n_head (5)"),
    ([{"type": "Embedding"}, {"type": "Embedding"}, {"type": "TemporalDense"},
      {"type": "CrossEntropyLoss"}], "layer 2: Embedding may only be the first layer"),
    ([{"type": "Embedding"}, {"type": "CrossEntropyLoss"}, {"type": "CrossEntropyLoss"}],
     "layer 2: CrossEntropyLoss may only be the last layer"),
    ([{"type": "Embedding"}, {"type": "Dropout", "p": 1.5}, {"type": "TemporalDense"},
      {"type": "CrossEntropyLoss"}], "layer 2 (Dropout): p must be a number in [0, 1), got 1.5"),
    ([{"type": "Embedding", "vocab_size": 80}, {"type": "TemporalDense"}, {"type": "CrossEntropyLoss"}],
     "vocab_size 80 does not match the vocabulary of 30 tokens"),
    ([{"type": "Embedding"}, {"type": "PositionalEmbedding", "block_size": 8}, {"type": "TemporalDense"},
      {"type": "CrossEntropyLoss"}], "block_size 8 is smaller than the model's --block-size 16"),
    ([{"type": "Embedding"}, {"n_embd": 3}, {"type": "CrossEntropyLoss"}], "layer 2 has no 'type'"),
    ([{"type": "Embedding"}, {"type": "RNN", "hidden_size": 0}, {"type": "TemporalDense"},
      {"type": "CrossEntropyLoss"}], "hidden_size must be a positive integer, got 0"),
])
def test_invalid_stacks_are_refused_with_a_clear_message(layers: list[dict], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        _config(layers)
    assert message in str(info.value)


def test_layers_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--layers: no such file"):
        read_layers_file(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[[layers]\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="is not valid TOML"):
        read_layers_file(bad)
    bad.write_text("[optim]\nlr = 1\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"unknown top-level key\(s\) optim"):
        read_layers_file(bad)
    bad.write_text("[model]\nn_layer = 2\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"unknown \[model\] setting\(s\) n_layer"):
        read_layers_file(bad)


@pytest.mark.parametrize("name", ["reference", "small_transformer", "lstm"])
def test_example_files_resolve(name: str) -> None:
    file = read_layers_file(EXAMPLES / f"{name}.toml")
    config = StackConfig(vocab_size=84, **file.model, layers=file.layers, source=file.source)
    assert config.layers[-1]["type"] == "CrossEntropyLoss"
    if name == "reference":
        assert [s["type"] for s in config.layers].count("Block") == 8
        assert config.layers[1] == {"type": "PositionalEmbedding", "block_size": 196, "n_embd": 512}
