"""`runtime.chat --model X.ts --trust-torchscript` for every kind `export torchscript` writes: the
TorchScript samplers (export/torchscript_generator.py, export/stack.py, export/gan.py)
give the ONNX runtime's text for the same seed, and the header picks the front end."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import runtime
from export.gan import TorchScriptGAN
from export.stack import export_stack_onnx, export_stack_torchscript
from export.torchscript_generator import TorchScriptGenerator, open_torchscript
from runtime import chat
from runtime.errors import ModelFileError
from runtime.gan import draw_noise
from runtime.stack import StackGenerator
from runtime.tokenizer import CharTokenizer
from runtime.torchscript_trust import torchscript_kind
from textgen_core.models.stack.model import Stack
from textgen_core.models.stack.spec import StackConfig, read_layers_file

REPO = Path(__file__).resolve().parents[2]
TOKENIZER = CharTokenizer(list("\n abcdefgh"))
# The layer kinds of the example files (their sizes shrunk to a tiny model), and a windowed stack
# with an LSTM inside, whose graph has a fixed, right-padded window and a state.
STACKS = {
    "attention": [{"type": layer["type"]} for layer in
                  read_layers_file(REPO / "examples/stacks/small_transformer.toml").layers],
    "lstm": [{"type": layer["type"]} for layer in
             read_layers_file(REPO / "examples/stacks/lstm.toml").layers],
    "windowed-lstm": [{"type": "Embedding"}, {"type": "PositionalEmbedding"}, {"type": "Block"},
                      {"type": "LSTM"}, {"type": "TemporalDense"}, {"type": "CrossEntropyLoss"}],
}

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def stacks(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Path]]:
    folder = tmp_path_factory.mktemp("stack-files")
    files = {}
    for name, layers in STACKS.items():
        torch.manual_seed(0)
        model = Stack(StackConfig(vocab_size=TOKENIZER.vocab_size, block_size=8, n_embd=16,
                                  n_head=2, layers=layers)).eval()
        with torch.no_grad():  # sharper logits than the small initialisation gives
            for p in model.parameters():
                p.mul_(4.0)
        files[name] = {"onnx": export_stack_onnx(model, TOKENIZER, folder / f"{name}.onnx"),
                       "ts": export_stack_torchscript(model, TOKENIZER, folder / f"{name}.ts")}
    return files


@pytest.mark.parametrize("name", sorted(STACKS))
@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_stack_file_samples_the_onnx_runtimes_tokens(name: str, temperature: float,
                                                     stacks: dict[str, dict[str, Path]]) -> None:
    ts = open_torchscript(stacks[name]["ts"], trusted=True)
    assert isinstance(ts, StackGenerator)
    kwargs = dict(max_new_tokens=20, temperature=temperature, seed=7)  # 3 + 20 > block_size 8
    ours = "".join(ts.generate("abc", **kwargs))
    theirs = "".join(runtime.load(stacks[name]["onnx"]).generate("abc", **kwargs))
    assert ours == theirs and len(ours) == 20


def test_chat_one_shot_on_a_stack_file(stacks: dict[str, dict[str, Path]],
                                       capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--prompt", "ab", "--seed", "1", "--max-new-tokens", "12"]
    assert chat.main(["--model", str(stacks["lstm"]["ts"]), "--trust-torchscript", *args]) == 0
    ours = capsys.readouterr().out
    assert chat.main(["--model", str(stacks["lstm"]["onnx"]), *args]) == 0
    assert ours == capsys.readouterr().out and len(ours) == 12 + 1  # the tokens, a newline


def test_gan_file_writes_the_onnx_files_sentences(exported_tiny_gan: dict[str, Path],
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """Exact: both files get the same numpy noise (runtime/gan.py draw_noise) and run the
    same float32 graph; only a uniform within ~1e-6 of a cumulative-probability boundary could pick
    another word (export/gan.py parity_noise), which these seeds do not draw."""
    args = ["--num-samples", "5", "--seed", "1"]
    assert chat.main(["--model", str(exported_tiny_gan["torchscript"]), "--trust-torchscript", *args]) == 0
    ours = capsys.readouterr().out
    assert chat.main(["--model", str(exported_tiny_gan["onnx"]), *args]) == 0
    assert ours == capsys.readouterr().out and len(ours.splitlines()) == 5
    gan = open_torchscript(exported_tiny_gan["torchscript"], trusted=True)
    assert isinstance(gan, TorchScriptGAN)
    assert gan.sample(7, seed=3) == runtime.load(exported_tiny_gan["onnx"]).sample(7, seed=3)


def test_gan_file_interactive_enter_writes_the_onnx_files_sentences(exported_tiny_gan: dict[str, Path]) -> None:
    result = subprocess.run([sys.executable, "-m", "runtime.chat", "--model",
                             str(exported_tiny_gan["torchscript"]), "--trust-torchscript", "--seed", "4"],
                            input="\n\n/quit\n", cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    shown = [line.split("› ", 1)[1] for line in result.stdout.splitlines() if "› " in line]
    onnx = runtime.load(exported_tiny_gan["onnx"])
    rng = np.random.default_rng(4)  # the chat's noise stream: one sentence per Enter
    expected = [onnx.tokenizer.decode(onnx.run(draw_noise(onnx.config, 1, rng))[0][0]) for _ in range(2)]
    assert shown == [*expected, ""]


def test_header_names_the_kind_without_torch(stacks: dict[str, dict[str, Path]], exported_tiny: dict[str, Path],
                                             exported_tiny_gan: dict[str, Path], tmp_path: Path) -> None:
    assert torchscript_kind(exported_tiny["torchscript"]) == "gpt"
    assert torchscript_kind(exported_tiny_gan["torchscript"]) == "gan"
    assert torchscript_kind(stacks["lstm"]["ts"]) == "stack"
    garbage = tmp_path / "x.ts"
    garbage.write_bytes(b"not a zip")
    assert torchscript_kind(garbage) is None and torchscript_kind(exported_tiny["onnx"]) is None


@pytest.mark.parametrize(("extra", "message"), [
    (["--num-samples", "2"], "--trust-torchscript if you trust its origin"),
    (["--num-samples", "2", "--trust-torchscript", "--top-p", "0.5"],
     "a GAN samples each word inside the model, from its softmax at --temperature (or by argmax), "
     "and takes no --top-p; leave it out"),
    (["--prompt", "the", "--trust-torchscript"], "a GAN writes sentences from noise and takes no --prompt"),
])
def test_gan_file_bad_input(exported_tiny_gan: dict[str, Path], capsys: pytest.CaptureFixture[str],
                            extra: list[str], message: str) -> None:
    assert chat.main(["--model", str(exported_tiny_gan["torchscript"]), *extra]) == 1
    err = capsys.readouterr().err
    assert message in " ".join(err.split()) and len(err.strip().splitlines()) == 1


def test_gpt_file_where_a_gan_is_needed(exported_tiny: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert chat.main(["--model", str(exported_tiny["torchscript"]), "--trust-torchscript",
                      "--num-samples", "3"]) == 1
    assert "holds a 'gpt' model" in capsys.readouterr().err


def test_each_opener_refuses_another_kind(exported_tiny_gan: dict[str, Path]) -> None:
    with pytest.raises(ModelFileError, match="holds a 'gan' model, not a 'gpt' model"):
        TorchScriptGenerator(exported_tiny_gan["torchscript"], trusted=True)
    with pytest.raises(ModelFileError, match="not a 'gpt' or 'stack' model"):
        chat.open_model(exported_tiny_gan["torchscript"], None, trust_torchscript=True)
