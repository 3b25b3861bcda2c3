"""Several samples in one run (runtime/multi_sample.py): batched sequences equal the same
sequences run alone (seed + j), torch and runtime agree for every option, stop texts are cut
and never streamed, and both command lines write the same JSON lines."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
import torch

import runtime
from export.gpt import export_gpt_onnx
from export.stack import export_stack_onnx
from runtime import chat
from runtime.errors import SamplingError
from runtime.multi_sample import narrow_for_gan, plan_samples, stops_of
from runtime.stop_texts import StopFilter
from runtime.tokenizer import CharTokenizer
from textgen_core.models.gpt import GPT, GPTConfig, gpt_from_checkpoint
from textgen_core.models.stack.model import Stack
from textgen_core.models.stack.spec import StackConfig
from textgen_core.sample import main as sample_main
from textgen_core.sampling import generate
from textgen_core.sampling import generate as torch_generate
from textgen_core.training.checkpoint import load_checkpoint

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TOKENIZER = CharTokenizer(list("\n abcdefgh"))


def by_sequence(pairs) -> dict[int, str]:
    texts: dict[int, str] = {}
    for index, piece in pairs:
        texts[index] = texts.get(index, "") + piece
    return texts


# --- the pure parts ---

def test_stop_filter_cuts_before_the_stop_and_holds_what_may_begin_one() -> None:
    f = StopFilter(["\n\n", "END"])
    assert f.feed("ab") == "ab"
    assert f.feed("\n") == ""  # may begin "\n\n": held
    assert f.feed("c") == "\nc"  # it did not
    assert f.feed("E") == "" and f.feed("N") == ""
    assert f.feed("Dxyz") == "" and f.stopped
    assert f.feed("more") == ""
    g = StopFilter(["ba"])
    assert g.feed("aab") == "aa" and g.flush() == "b" and not g.stopped


def test_stop_filter_takes_the_earliest_of_several_stops() -> None:
    f = StopFilter(["cd", "b"])
    assert f.feed("abcd") == "a" and f.stopped


def test_stop_flags_read_newline_tab_and_backslash_escapes() -> None:
    args = argparse.Namespace(stop=["\\n\\n", "a\\tb", "c\\\\n", "\\x"])
    assert stops_of(args) == ["\n\n", "a\tb", "c\\n", "\\x"]


def test_samples_are_numbered_prompt_then_temperature_then_sample_and_seeded_seed_plus_j() -> None:
    samples = plan_samples(["x", "y"], [0.5, 1.0], 2, 2**32 - 1)
    assert [(s.prompt_index, s.temperature, s.sample) for s in samples[:4]] == [
        (0, 0.5, 0), (0, 0.5, 1), (0, 1.0, 0), (0, 1.0, 1)]
    assert [s.seed for s in samples[:2]] == [2**32 - 1, 0]  # wraps into the seed range
    assert [s.index for s in samples] == list(range(8))
    assert all(s.seed is None for s in plan_samples(["x"], [1.0], 3, None))
    with pytest.raises(SamplingError, match="--num-samples must be a positive integer"):
        plan_samples(["x"], [1.0], 0, None)
    with pytest.raises(SamplingError, match="at most 256 sequences per prompt"):
        plan_samples(["x"], [1.0, 0.5], 200, None)


def test_a_gan_refuses_the_text_samplers_options_in_one_line() -> None:
    args = argparse.Namespace(prompt_file=None, output=None, stop=["x"], temperature=None)
    with pytest.raises(SamplingError, match="--stop is for GPT and stack models"):
        narrow_for_gan(args)
    args = argparse.Namespace(prompt_file=None, output=None, stop=[], temperature=[0.5, 1.0])
    with pytest.raises(SamplingError, match="several temperatures are for GPT and stack"):
        narrow_for_gan(args)
    args.temperature = [0.5]
    narrow_for_gan(args)
    assert args.temperature == 0.5
    # A GAN draws whole sentences of its trained length: a length or penalty would be ignored.
    for flag, value in (("max_new_tokens", 20), ("repetition_penalty", 1.3), ("markup", "shakespeare")):
        given = argparse.Namespace(prompt_file=None, output=None, stop=[], temperature=None,
                                   **{flag: value})
        with pytest.raises(SamplingError, match=f"--{flag.replace('_', '-')} is for GPT and stack"):
            narrow_for_gan(given)
    narrow_for_gan(argparse.Namespace(prompt_file=None, output=None, stop=[], temperature=None,
                                      max_new_tokens=None, repetition_penalty=1.0, markup=None))


# --- GPT: batched = alone, runtime = torch ---

@pytest.fixture(scope="module")
def gpts(exported_tiny: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The session's rotary GPT (in-place cache), and a learned-position one (plain cache)."""
    model, tokenizer = gpt_from_checkpoint(load_checkpoint(exported_tiny["checkpoint"]))
    torch.manual_seed(0)
    learned = GPT(GPTConfig(vocab_size=tokenizer.vocab_size, block_size=16, n_layer=1, n_head=2,
                            n_embd=16, positions="learned")).eval()
    path = export_gpt_onnx(learned, tokenizer, tmp_path_factory.mktemp("learned") / "l.onnx")
    return {"rotary": (model.eval(), tokenizer, exported_tiny["onnx"]),
            "learned": (learned, tokenizer, path)}


@pytest.mark.parametrize("name", ["rotary", "learned"])
def test_batched_samples_equal_each_sample_run_alone_and_torch(name: str, gpts: dict) -> None:
    model, tokenizer, path = gpts[name]
    gen = runtime.load(path)
    kwargs = dict(max_new_tokens=40, top_k=20, seed=11)  # past the window: rolls or slides
    temperatures = [0.0, 1.0]
    batched = by_sequence(gen.generate("To be", temperature=temperatures, num_samples=3, **kwargs))
    assert sorted(batched) == list(range(6))
    for t, temperature in enumerate(temperatures):
        for j in range(3):
            alone = "".join(gen.generate("To be", temperature=temperature,
                                         **{**kwargs, "seed": 11 + j}))
            assert batched[t * 3 + j] == alone and len(alone) == 40
    assert len({batched[3], batched[4], batched[5]}) == 3  # each sample its own random stream
    theirs = by_sequence(torch_generate(model, tokenizer, "To be", temperature=temperatures,
                                        num_samples=3, **kwargs))
    assert theirs == batched


def test_a_list_of_prompts_of_different_lengths_and_stop_texts(gpts: dict) -> None:
    model, tokenizer, path = gpts["rotary"]
    gen = runtime.load(path)
    prompts = ["T", "Whether 'tis nobler"]
    kwargs = dict(max_new_tokens=30, temperature=0.9, seed=3, stop=["e", "\n"])
    ours = by_sequence(gen.generate(prompts, **kwargs))
    for index, prompt in enumerate(prompts):
        full = "".join(gen.generate(prompt, max_new_tokens=30, temperature=0.9, seed=3))
        cut = min(i for i in (full.find("e"), full.find("\n"), len(full)) if i >= 0)
        assert ours.get(index, "") == full[:cut]
    assert by_sequence(torch_generate(model, tokenizer, prompts, **kwargs)) == ours


def test_a_plain_prompt_still_streams_pieces(gpts: dict) -> None:
    _, _, path = gpts["rotary"]
    pieces = list(runtime.load(path).generate("To", max_new_tokens=5, temperature=0))
    assert len(pieces) == 5 and all(isinstance(p, str) for p in pieces)


def test_a_stateful_yoke_samples_batched_as_alone_and_as_the_runtime(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=TOKENIZER.vocab_size, block_size=8, n_layer=2, n_head=2,
                          n_embd=16, yoke="1:8:stateful")).eval()
    kwargs = dict(max_new_tokens=20, temperature=1.0, seed=4)  # slides carry the state
    batched = by_sequence(torch_generate(model, TOKENIZER, "abcdefgh abc", num_samples=2, **kwargs))
    for j in range(2):
        assert batched[j] == "".join(torch_generate(model, TOKENIZER, "abcdefgh abc",
                                                    **{**kwargs, "seed": 4 + j}))
    gen = runtime.load(export_gpt_onnx(model, TOKENIZER, tmp_path / "yoke.onnx"))
    assert by_sequence(gen.generate("abcdefgh abc", num_samples=2, **kwargs)) == batched


# --- stacks ---

STACK_LAYERS = {
    "lstm": [{"type": "Embedding"}, {"type": "LSTM"}, {"type": "TemporalDense"},
             {"type": "CrossEntropyLoss"}],
    "transformer": [{"type": "Embedding"}, {"type": "PositionalEmbedding"}, {"type": "Block"},
                    {"type": "LayerNorm"}, {"type": "TemporalDense"}, {"type": "CrossEntropyLoss"}],
}


@pytest.mark.parametrize("name", sorted(STACK_LAYERS))
def test_stack_batched_samples_equal_alone_and_torch(name: str, tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = Stack(StackConfig(vocab_size=TOKENIZER.vocab_size, block_size=8, n_embd=16,
                              n_head=2, layers=STACK_LAYERS[name])).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(4.0)
    gen = runtime.load(export_stack_onnx(model, TOKENIZER, tmp_path / f"{name}.onnx"))
    kwargs = dict(max_new_tokens=20, temperature=[0.0, 1.0], seed=7, num_samples=2)
    ours = by_sequence(gen.generate(["abc", "hg"], **kwargs))
    assert sorted(ours) == list(range(8))
    assert ours[3] == "".join(gen.generate("abc", max_new_tokens=20, temperature=1.0, seed=8))
    assert ours == by_sequence(generate(model, TOKENIZER, ["abc", "hg"], **kwargs))


# --- the command lines ---

def test_both_command_lines_write_the_same_samples(exported_tiny: dict[str, Path], tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("To be\n\nWhether\n", encoding="utf-8")
    flags = ["--prompt-file", str(prompts), "--num-samples", "2", "--temperature", "0.5,1.0",
             "--seed", "9", "--max-new-tokens", "25", "--stop", "\n", "--stop", "zz"]
    assert chat.main(["--model", str(exported_tiny["onnx"]), *flags,
                      "--output", str(tmp_path / "runtime.jsonl")]) == 0
    chat_out = capsys.readouterr().out
    assert sample_main([str(exported_tiny["checkpoint"]), *flags, "--device", "cpu", "--echo",
                        "--output", str(tmp_path / "torch.jsonl")]) == 0
    sample_out = capsys.readouterr().out
    ours = [json.loads(line) for line in (tmp_path / "runtime.jsonl").read_text().splitlines()]
    theirs = [json.loads(line) for line in (tmp_path / "torch.jsonl").read_text().splitlines()]
    assert len(ours) == 8 and [r["index"] for r in ours] == list(range(8))
    assert [r["prompt"] for r in ours] == ["To be"] * 4 + ["Whether"] * 4
    assert [r["temperature"] for r in ours[:4]] == [0.5, 0.5, 1.0, 1.0]
    assert [r["seed"] for r in ours[:4]] == [9, 10, 9, 10]
    assert all(r["stop"] == ["\n", "zz"] and r["max_new_tokens"] == 25 for r in ours)
    assert all("\n" not in r["text"] for r in ours)
    assert [{**r, "model": ""} for r in ours] == [{**r, "model": ""} for r in theirs]
    assert chat_out.count("=== sample ") == 8 and "temperature 0.5, seed 10 ===" in chat_out
    for record in ours:  # chat prints continuations, sample with --echo prompt + continuation
        assert record["text"] in chat_out and record["prompt"] + record["text"] in sample_out


@pytest.mark.parametrize(("flags", "message"), [
    (["--prompt", "To", "--prompt-file", "x"], "give --prompt TEXT or --prompt-file F, not both"),
    (["--prompt-file", "missing.txt"], "--prompt-file missing.txt: cannot read it"),
    (["--prompt", "To", "--stop", ""], "--stop needs a non-empty text"),
    (["--prompt", "To", "--num-samples", "0"], "--num-samples must be a positive integer"),
    (["--stop", "x"], "are for one-shot runs: add --prompt TEXT"),
    (["--prompt", "To", "--output", "no/such/folder/x.jsonl"], "--output no/such/folder/x.jsonl: "
                                                               "not a file in an existing folder"),
    (["--prompt", "To", "--temperature", "0.5,-1"], "--temperature must be a finite number"),
])
def test_bad_batch_flags_get_one_line(flags: list[str], message: str, exported_tiny: dict[str, Path],
                                      tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    assert chat.main(["--model", str(exported_tiny["onnx"]), *flags]) == 1
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_an_empty_prompt_file_is_refused(tiny_gpt_checkpoint: Path, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "p.txt").write_text("\n  \n", encoding="utf-8")
    assert sample_main([str(tiny_gpt_checkpoint), "--prompt-file", str(tmp_path / "p.txt")]) == 1
    assert "no prompt in it (every line is blank)" in capsys.readouterr().err


def test_a_torchscript_file_takes_one_prompt_only(exported_tiny: dict[str, Path],
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert chat.main(["--model", str(exported_tiny["torchscript"]), "--trust-torchscript",
                      "--prompt", "To", "--num-samples", "2"]) == 1
    err = capsys.readouterr().err
    assert "sample .onnx files; export one with" in err and err.count("\n") == 1
