"""GAN generator → ONNX / TorchScript: parity with torch, metadata, the runtime's contract checks."""

import io
import json
import warnings
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import numpy_helper

import runtime
from export.cli import main as export_main
from export.gan import _Sampler, example_inputs, gan_onnx_parity, gan_torchscript_parity, input_names
from export.onnx_file import OPSET, save_textgen_onnx
from export.torchscript_file import extra_files, save_traced
from runtime.chat import main as chat_main
from runtime.contract import GAN_OUTPUTS, TEMPERATURE, UNIFORM
from runtime.errors import ModelFileError, SamplingError
from runtime.gan import GANSampler, draw_noise, open_sampler
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


@pytest.mark.parametrize("temperature", [0.0, 0.5, 1.6])
def test_onnx_and_torchscript_match_torch_at_other_temperatures(exported_tiny_gan: dict[str, Path],
                                                                temperature: float) -> None:
    gan, _ = gan_from_checkpoint(load_checkpoint(exported_tiny_gan["checkpoint"]))
    for parity, path in ((gan_onnx_parity, exported_tiny_gan["onnx"]),
                         (gan_torchscript_parity, exported_tiny_gan["torchscript"])):
        worst, ids_differ = parity(gan.generator, path, seed=9, temperature=temperature)
        assert worst < 1e-4 and ids_differ == 0


def test_temperature_is_an_input_with_the_default_one(exported_tiny_gan: dict[str, Path]) -> None:
    """A caller that feeds no temperature (the web page, an older runtime) samples at 1."""
    proto = onnx.load(str(exported_tiny_gan["onnx"]))
    assert TEMPERATURE in [i.name for i in proto.graph.input]
    (default,) = [t for t in proto.graph.initializer if t.name == TEMPERATURE]
    assert numpy_helper.to_array(default).shape == () and float(numpy_helper.to_array(default)) == 1.0
    sampler = GANSampler(exported_tiny_gan["onnx"])
    assert sampler.takes_temperature
    noise = draw_noise(sampler.config, 5, np.random.default_rng(11))
    plain = ort.InferenceSession(str(exported_tiny_gan["onnx"]), providers=["CPUExecutionProvider"])
    assert TEMPERATURE not in [i.name for i in plain.get_inputs()]
    unfed_ids, _ = plain.run(list(GAN_OUTPUTS), noise)
    assert np.array_equal(unfed_ids, sampler.run(noise, 1.0)[0])
    assert not np.array_equal(sampler.run(noise, 0.0)[0], sampler.run(noise, 3.0)[0])


def test_temperature_zero_is_argmax(exported_tiny_gan: dict[str, Path]) -> None:
    sampler = GANSampler(exported_tiny_gan["onnx"])
    noise = draw_noise(sampler.config, 6, np.random.default_rng(12))
    ids, probs = sampler.run(noise, 0.0)
    assert np.array_equal(ids, probs.argmax(-1))  # `probs` are the model's, at temperature 1
    other_uniforms = {**noise, UNIFORM: np.random.default_rng(13).random(noise[UNIFORM].shape,
                                                                          dtype=np.float32)}
    assert np.array_equal(sampler.run(other_uniforms, 0.0)[0], ids)


@pytest.mark.parametrize("bad", [-0.5, float("nan"), float("inf")])
def test_bad_temperature_is_refused(exported_tiny_gan: dict[str, Path], bad: float) -> None:
    with pytest.raises(SamplingError, match="--temperature must be a finite number >= 0"):
        GANSampler(exported_tiny_gan["onnx"]).sample(2, seed=0, temperature=bad)


def _files_without_temperature(checkpoint: Path, folder: Path) -> tuple[Path, Path]:
    """ONNX and TorchScript files as exported before issue 31: noise in, no temperature input."""
    gan, tokenizer = gan_from_checkpoint(load_checkpoint(checkpoint))
    generator = gan.generator.eval()
    names = [n for n in input_names(generator) if n != TEMPERATURE]
    example = tuple(example_inputs(generator)[n] for n in names)
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(_Sampler(generator), example, buffer, input_names=names,
                          output_names=list(GAN_OUTPUTS),
                          dynamic_axes={n: {0: "batch"} for n in [*names, *GAN_OUTPUTS]},
                          opset_version=OPSET, dynamo=False)
        onnx_path = save_textgen_onnx(onnx.load_from_string(buffer.getvalue()), folder / "old.onnx",
                                      kind="gan", tokenizer=tokenizer.to_dict(),
                                      model_config=generator.config.to_dict())
        ts_path = save_traced(_Sampler(generator), example, folder / "old.ts",
                              extra_files("gan", tokenizer.to_dict(), generator.config.to_dict()))
    return onnx_path, ts_path


def test_files_exported_before_the_temperature_still_sample(exported_tiny_gan: dict[str, Path],
                                                            tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    old_onnx, old_ts = _files_without_temperature(exported_tiny_gan["checkpoint"], tmp_path)
    expected = GANSampler(exported_tiny_gan["onnx"]).sample(4, seed=5)
    for old in (GANSampler(old_onnx), open_sampler(old_ts, None, trust_torchscript=True)):
        assert not old.takes_temperature
        assert old.sample(4, seed=5) == old.sample(4, seed=5, temperature=1.0) == expected
        with pytest.raises(SamplingError, match=r"exported before GAN temperatures and samples at 1 "
                                                r"only; export it again \(python -m export\) for "
                                                r"--temperature 0\.5"):
            old.sample(4, seed=5, temperature=0.5)
    assert chat_main(["--model", str(old_onnx), "--num-samples", "2", "--temperature", "0.5"]) == 1
    err = capsys.readouterr().err
    assert "exported before GAN temperatures" in err and len(err.strip().splitlines()) == 1
