"""GAN generator → ONNX / TorchScript: parity with torch, metadata, the runtime's contract checks."""

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

import runtime
from export.cli import main as export_main
from export.gan import gan_onnx_parity, gan_torchscript_parity
from runtime.errors import ModelFileError
from runtime.gan import GANSampler, draw_noise
from textgen_core.models.gan import gan_from_checkpoint
from textgen_core.training.checkpoint import load_checkpoint


def test_onnx_matches_torch_on_fresh_noise(exported_tiny_gan: dict[str, Path]) -> None:
    gan, _ = gan_from_checkpoint(load_checkpoint(exported_tiny_gan["checkpoint"]))
    worst, ids_differ = gan_onnx_parity(gan.generator, exported_tiny_gan["onnx"], seed=7)
    assert worst < 1e-4 and ids_differ == 0
    assert "max |Δprobs| vs torch" in exported_tiny_gan["report"]


def test_torchscript_matches_torch(exported_tiny_gan: dict[str, Path]) -> None:
    gan, _ = gan_from_checkpoint(load_checkpoint(exported_tiny_gan["checkpoint"]))
    worst, ids_differ = gan_torchscript_parity(gan.generator, exported_tiny_gan["torchscript"], seed=8)
    assert worst < 1e-4 and ids_differ == 0


def test_numpy_noise_gives_torch_identical_sentences(exported_tiny_gan: dict[str, Path]) -> None:
    gan, _ = gan_from_checkpoint(load_checkpoint(exported_tiny_gan["checkpoint"]))
    sampler = runtime.load(exported_tiny_gan["onnx"])
    assert isinstance(sampler, GANSampler)
    noise = draw_noise(sampler.config, 4, np.random.default_rng(3))
    ids, probs = sampler.run(noise)
    with torch.inference_mode():
        torch_ids, torch_probs = gan.generator(**{k: torch.from_numpy(v) for k, v in noise.items()})
    assert np.array_equal(ids, torch_ids.numpy())
    assert np.abs(probs - torch_probs.numpy()).max() < 1e-4
    assert sampler.sample(3, seed=5) == sampler.sample(3, seed=5)


def test_metadata_carries_kind_vocabulary_and_checksum(exported_tiny_gan: dict[str, Path]) -> None:
    meta = {p.key: p.value for p in onnx.load(str(exported_tiny_gan["onnx"])).metadata_props}
    assert meta["textgen.kind"] == "gan"
    assert json.loads(meta["textgen.tokenizer"])["words"][:2] == ["<end>", "<unk>"]
    assert json.loads(meta["textgen.model_config"])["seq_len"] == 8
    assert len(meta["textgen.checksum"]) == 64


def test_modified_file_is_refused(exported_tiny_gan: dict[str, Path], tmp_path: Path) -> None:
    data = bytearray(exported_tiny_gan["onnx"].read_bytes())
    data[len(data) // 2] ^= 0x01
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match=r"checksum does not match|truncated or corrupt"):
        runtime.load(bad)


def test_gan_file_is_not_a_gpt(exported_tiny_gan: dict[str, Path]) -> None:
    with pytest.raises(ModelFileError, match="holds a 'gan' model, not a GPT"):
        runtime.TextGenerator(exported_tiny_gan["onnx"])


def test_quantize_is_refused_for_a_gan(exported_tiny_gan: dict[str, Path], tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    ckpt = tmp_path / "g.pt"
    ckpt.write_bytes(exported_tiny_gan["checkpoint"].read_bytes())
    assert export_main(["onnx", str(ckpt), "--quantize", "int8"]) == 1
    assert "available for GPT models only" in capsys.readouterr().err
    assert not ckpt.with_suffix(".onnx").exists()
