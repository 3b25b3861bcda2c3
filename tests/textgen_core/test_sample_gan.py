"""`python -m textgen_core.sample models/gan.pt --num-samples N --seed S`: the torch generator
writes the runtime's sentences for the same seed; what a GAN cannot take gets the chat's line."""

from __future__ import annotations

from pathlib import Path

import pytest

from runtime.chat import main as chat_main
from runtime.errors import SamplingError
from runtime.word_tokenizer import WordTokenizer
from textgen_core.models.gan import GAN, GANConfig
from textgen_core.sample import main as sample_main
from textgen_core.sampling import gan_sentences


def _lines(capsys: pytest.CaptureFixture[str]) -> list[str]:
    return capsys.readouterr().out.splitlines()


def test_torch_writes_the_runtimes_sentences_for_the_same_seed(exported_tiny_gan: dict[str, Path],
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    """Exact: both sides draw the noise with numpy (runtime/gan.py draw_noise) and run the
    same float32 generator; only a uniform within ~1e-6 of a cumulative-probability boundary could
    pick another word (export/gan.py parity_noise), which this seed does not draw."""
    assert sample_main([str(exported_tiny_gan["checkpoint"]), "--num-samples", "5", "--seed", "1"]) == 0
    torch_sentences = _lines(capsys)
    assert chat_main(["--model", str(exported_tiny_gan["onnx"]), "--num-samples", "5", "--seed", "1"]) == 0
    assert torch_sentences == _lines(capsys) and len(torch_sentences) == 5


@pytest.mark.parametrize("temperature", ["0", "0.5", "1.6"])
def test_torch_onnx_and_torchscript_agree_at_each_temperature(exported_tiny_gan: dict[str, Path],
                                                              capsys: pytest.CaptureFixture[str],
                                                              temperature: str) -> None:
    """The temperature is a graph input (issue 31): the same seed and temperature give the same
    sentences from the checkpoint, the ONNX file and the TorchScript file."""
    flags = ["--num-samples", "6", "--seed", "2", "--temperature", temperature]
    assert sample_main([str(exported_tiny_gan["checkpoint"]), *flags]) == 0
    torch_sentences = _lines(capsys)
    assert chat_main(["--model", str(exported_tiny_gan["onnx"]), *flags]) == 0
    assert _lines(capsys) == torch_sentences
    assert chat_main(["--model", str(exported_tiny_gan["torchscript"]), "--trust-torchscript", *flags]) == 0
    assert _lines(capsys) == torch_sentences and len(torch_sentences) == 6


def test_temperature_one_is_the_default(exported_tiny_gan: dict[str, Path],
                                        capsys: pytest.CaptureFixture[str]) -> None:
    args = [str(exported_tiny_gan["checkpoint"]), "--num-samples", "4", "--seed", "3"]
    assert sample_main(args) == 0
    default = _lines(capsys)
    assert sample_main([*args, "--temperature", "1"]) == 0
    assert _lines(capsys) == default


def test_one_sentence_by_default(exported_tiny_gan: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert sample_main([str(exported_tiny_gan["checkpoint"]), "--seed", "1"]) == 0
    assert len(_lines(capsys)) == 1


GAN_REFUSALS = [
    (["--prompt", "the king"], "a GAN writes sentences from noise and takes no --prompt; use --num-samples N"),
    (["--temperature=-1"], "--temperature must be a finite number >= 0, got -1.0"),
    (["--top-k", "5"], "takes no --top-k; leave it out"),
    (["--num-samples", "0"], "--num-samples must be a positive integer, got 0"),
]


@pytest.mark.parametrize(("extra", "message"), GAN_REFUSALS)
def test_torch_refuses_what_a_gan_cannot_take(exported_tiny_gan: dict[str, Path],
                                              capsys: pytest.CaptureFixture[str],
                                              extra: list[str], message: str) -> None:
    assert sample_main([str(exported_tiny_gan["checkpoint"]), *extra]) == 1
    captured = capsys.readouterr()
    assert message in " ".join(captured.err.split()) and len(captured.err.strip().splitlines()) == 1
    assert captured.out == ""


@pytest.mark.parametrize(("extra", "message"), GAN_REFUSALS)
def test_runtime_refuses_the_same(exported_tiny_gan: dict[str, Path], capsys: pytest.CaptureFixture[str],
                                  extra: list[str], message: str) -> None:
    """The chat's --temperature used to be accepted and ignored for a GAN (issue 17)."""
    assert chat_main(["--model", str(exported_tiny_gan["onnx"]), "--num-samples", "2", *extra]) == 1
    err = capsys.readouterr().err
    assert message.split("; use")[0] in " ".join(err.split()) and len(err.strip().splitlines()) == 1


def test_html_is_refused_for_a_gan(exported_tiny_gan: dict[str, Path], tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert sample_main([str(exported_tiny_gan["checkpoint"]), "--html", str(tmp_path / "x.html")]) == 1
    assert "--html marks GPT and stack samples" in capsys.readouterr().err
    assert not (tmp_path / "x.html").exists()


def test_num_samples_of_a_gpt_gives_labelled_samples(tiny_gpt_checkpoint: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    assert sample_main([str(tiny_gpt_checkpoint), "--num-samples", "3", "--max-new-tokens", "5",
                        "--seed", "1", "--device", "cpu"]) == 0
    assert capsys.readouterr().out.count("=== sample ") == 3


def test_a_gpt_still_samples_at_the_default_temperature(tiny_gpt_checkpoint: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    args = [str(tiny_gpt_checkpoint), "--prompt", "To", "--max-new-tokens", "20", "--seed", "3"]
    assert sample_main(args) == 0
    default = capsys.readouterr().out
    assert sample_main([*args, "--temperature", "0.8"]) == 0
    assert capsys.readouterr().out == default


def test_an_argmax_generator_takes_no_other_temperature() -> None:
    """Its words are the argmax whatever the temperature: 1 is accepted, anything else refused."""
    config = GANConfig(vocab_size=6, seq_len=4, n_embd=8, n_head=2, ffn_hidden=8, n_mapping=1,
                       n_noise_blocks=1, n_output_blocks=0, critic_layers=1, token_choice="argmax")
    words = WordTokenizer(["<end>", "<unk>", "a", "b", "c", "d"])
    generator = GAN(config).generator
    assert len(gan_sentences(generator, words, 2, seed=0, temperature=1.0)) == 2
    with pytest.raises(SamplingError, match=r"picks every word by argmax \(--token-choice argmax\) "
                                            r"and takes no --temperature; leave it out"):
        gan_sentences(generator, words, 2, seed=0, temperature=0.5)
