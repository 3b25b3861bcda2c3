"""Yoke and stateful-yoke models through export, the runtime, and both samplers."""

from pathlib import Path

import onnx
import pytest
import torch

import runtime
from export.cli import export_checkpoint
from export.gpt import torchscript_parity
from export.parity import onnx_parity
from export.stateful_parity import stateful_onnx_parity
from export.torchscript_generator import TorchScriptGenerator
from runtime.tokenizer import CharTokenizer
from textgen_core.models.gpt import GPT, GPTConfig, gpt_from_checkpoint
from textgen_core.sampling import generate
from textgen_core.training.checkpoint import load_checkpoint, make_checkpoint, save_checkpoint

BLOCK = 8  # small, so that 40 new tokens slide the window several times


def _checkpoint(folder: Path, yoke: str, tiny_text: str) -> Path:
    torch.manual_seed(3)
    tokenizer = CharTokenizer.from_text(tiny_text)
    model = GPT(GPTConfig(vocab_size=tokenizer.vocab_size, block_size=BLOCK, n_layer=2, n_head=2,
                          n_embd=32, yoke=yoke))
    spec = model.config.yoke_spec
    with torch.no_grad():  # untrained weights: make the state and the bottleneck matter
        for p in model.blocks[spec.layer].mlp.parameters():
            p.normal_(std=0.5)
    path = folder / f"{yoke.replace(':', '_')}.pt"
    save_checkpoint(make_checkpoint(kind="gpt", model_config=model.config.to_dict(),
                                    tokenizer=tokenizer.to_dict(), model_state=model.state_dict(),
                                    train_state={"step": 0}), path)
    return path


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory, tiny_text: str) -> dict[str, dict]:
    folder = tmp_path_factory.mktemp("yoke")
    files = {}
    for yoke in ("1:8:no-residual", "0:8:stateful"):
        ckpt = _checkpoint(folder, yoke, tiny_text)
        lines: list[str] = []
        (onnx_path,) = export_checkpoint(str(ckpt), "onnx", report=lines.append)
        (ts_path,) = export_checkpoint(str(ckpt), "torchscript", report=lines.append)
        files[yoke] = {"checkpoint": ckpt, "onnx": onnx_path, "ts": ts_path, "report": lines}
    return files


@pytest.mark.parametrize("yoke", ["1:8:no-residual", "0:8:stateful"])
def test_onnx_and_torchscript_parity(exported: dict[str, dict], yoke: str) -> None:
    files = exported[yoke]
    model, _ = gpt_from_checkpoint(load_checkpoint(files["checkpoint"]))
    assert onnx_parity(model, files["onnx"]).worst < 1e-4
    assert torchscript_parity(model, files["ts"]) < 1e-4
    if yoke.endswith("stateful"):
        assert stateful_onnx_parity(model, files["onnx"]) < 1e-4
        assert any("yoke_state_out" in line for line in files["report"])


def test_only_the_stateful_graph_has_the_state_interface(exported: dict[str, dict]) -> None:
    def io(path: Path) -> dict[str, list[object]]:
        graph = onnx.load(str(path)).graph
        return {v.name: [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]
                for v in [*graph.input, *graph.output]}

    plain = io(exported["1:8:no-residual"]["onnx"])
    assert "yoke_state" not in plain and "yoke_state_out" not in plain
    stateful = io(exported["0:8:stateful"]["onnx"])
    assert stateful["yoke_state"] == ["batch", 8]
    assert stateful["yoke_state_out"] == ["batch", "sequence", 8]
    assert runtime.load(exported["0:8:stateful"]["onnx"]).model.shape.state_size == 8


@pytest.mark.parametrize("yoke", ["1:8:no-residual", "0:8:stateful"])
def test_runtime_greedy_equals_torch_greedy_across_window_slides(
        exported: dict[str, dict], yoke: str) -> None:
    files = exported[yoke]
    model, tokenizer = gpt_from_checkpoint(load_checkpoint(files["checkpoint"]))
    prompt = "To be, or not to be"  # longer than the window: the stateful prompt is pre-read
    expected = "".join(generate(model, tokenizer, prompt, max_new_tokens=40, temperature=0.0))
    onnx_text = "".join(runtime.load(files["onnx"]).generate(prompt, 40, temperature=0.0))
    ts = TorchScriptGenerator(files["ts"], trusted=True)
    ts_text = "".join(ts.generate(prompt, 40, temperature=0.0))
    assert onnx_text == expected and ts_text == expected
    sampled = "".join(generate(model, tokenizer, "T", max_new_tokens=30, temperature=1.0, seed=4))
    assert "".join(runtime.load(files["onnx"]).generate("T", 30, temperature=1.0, seed=4)) == sampled


def test_the_carried_state_changes_what_follows_a_slide(exported: dict[str, dict]) -> None:
    model, tokenizer = gpt_from_checkpoint(load_checkpoint(exported["0:8:stateful"]["checkpoint"]))
    with_state = "".join(generate(model, tokenizer, "T", max_new_tokens=40, temperature=0.0))
    with torch.no_grad():
        model.blocks[0].mlp.c_state.weight.zero_()  # the same model, deaf to its state
    without = "".join(generate(model, tokenizer, "T", max_new_tokens=40, temperature=0.0))
    # The first window has no earlier state either way; only after the first slide they part.
    first_slide = BLOCK - 1
    assert with_state[:first_slide] == without[:first_slide]
    assert with_state != without
