"""The torch-free runtime on exported stacks: the same tokens as the torch sampler (a stepped
LSTM stack and a windowed transformer stack whose window slides), runtime.load and the chat."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import runtime
from export.stack import export_stack_onnx
from runtime import chat
from runtime.errors import ModelFileError
from runtime.stack import OnnxStack, StackGenerator
from runtime.tokenizer import CharTokenizer
from textgen_core.models.stack.model import Stack
from textgen_core.models.stack.spec import StackConfig
from textgen_core.sampling import generate

TOKENIZER = CharTokenizer(list("\n abcdefgh"))
LAYERS = {
    "lstm": [{"type": "Embedding"}, {"type": "LSTM"}, {"type": "TemporalDense"},
             {"type": "CrossEntropyLoss"}],
    "transformer": [{"type": "Embedding"}, {"type": "PositionalEmbedding"}, {"type": "Block"},
                    {"type": "LayerNorm"}, {"type": "TemporalDense"}, {"type": "CrossEntropyLoss"}],
}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Stack, Path]]:
    folder = tmp_path_factory.mktemp("stacks")
    result = {}
    for name, layers in LAYERS.items():
        torch.manual_seed(0)
        model = Stack(StackConfig(vocab_size=TOKENIZER.vocab_size, block_size=8, n_embd=16,
                                  n_head=2, layers=layers)).eval()
        with torch.no_grad():  # sharper logits than the small initialisation gives
            for p in model.parameters():
                p.mul_(4.0)
        result[name] = (model, export_stack_onnx(model, TOKENIZER, folder / f"{name}.onnx"))
    return result


@pytest.mark.parametrize("name", sorted(LAYERS))
@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_runtime_samples_the_same_tokens_as_torch(name: str, temperature: float,
                                                  exported: dict[str, tuple[Stack, Path]]) -> None:
    model, path = exported[name]
    gen = runtime.load(path)
    assert isinstance(gen, StackGenerator)
    kwargs = dict(max_new_tokens=20, temperature=temperature, seed=7)  # 3 + 20 > block_size 8
    ours = "".join(gen.generate("abc", **kwargs))
    theirs = "".join(generate(model, TOKENIZER, "abc", **kwargs))
    assert ours == theirs and len(ours) == 20


def test_stepped_state_is_carried_token_by_token(exported: dict[str, tuple[Stack, Path]]) -> None:
    model, path = exported["lstm"]
    onnx_model = OnnxStack(path)
    assert onnx_model.sequence_length == 1 and not onnx_model.windowed
    ids = [1, 4, 2, 9, 3]
    state = onnx_model.empty_state()
    for token in ids:
        logits, state = onnx_model.forward(np.asarray([[token]]), state)
    with torch.no_grad():
        expected = model(torch.tensor([ids]))[0][0, -1].numpy()
    assert np.abs(logits[0, -1] - expected).max() < 1e-4


def test_chat_one_shot_on_a_stack(exported: dict[str, tuple[Stack, Path]],
                                  capsys: pytest.CaptureFixture[str]) -> None:
    _, path = exported["transformer"]
    assert chat.main(["--model", str(path), "--prompt", "ab", "--seed", "1",
                      "--max-new-tokens", "5"]) == 0
    assert len(capsys.readouterr().out.strip("\n")) >= 5


def test_a_truncated_stack_file_is_refused(exported: dict[str, tuple[Stack, Path]], tmp_path: Path) -> None:
    _, path = exported["lstm"]
    bad = tmp_path / "cut.onnx"
    bad.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(ModelFileError, match=r"cut\.onnx"):
        StackGenerator(bad)
