"""`--tokenizer char|word|bpe` walked through every step a user takes, for the GPT and the layer
stack: train, resume, export to ONNX, sample through the runtime (greedy, token for token the
same as torch), evaluate in bits per character; and the one-line errors of bad tokenizer input."""

from __future__ import annotations

from pathlib import Path

import pytest

import runtime
from export.cli import export_checkpoint
from runtime.chat import main as chat_main
from textgen_core.evaluate import main as evaluate_main
from textgen_core.models.gpt import gpt_from_checkpoint
from textgen_core.models.stack.loading import stack_from_checkpoint
from textgen_core.sampling import generate
from textgen_core.sampling import generate as torch_generate
from textgen_core.train import main as train_main
from textgen_core.training.checkpoint import load_checkpoint

pytest.importorskip("tokenizers")
pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = ["--device", "cpu", "--sample-tokens", "0", "--max-iters", "3", "--eval-interval", "3",
        "--eval-iters", "1", "--batch-size", "4", "--block-size", "16", "--n-embd", "16",
        "--n-head", "2"]
KIND_FLAGS = {"char": ["--tokenizer", "char"], "word": ["--tokenizer", "word", "--vocab-size", "60"],
              "bpe": ["--tokenizer", "bpe", "--vocab-size", "300"]}
STACK_LAYERS = """
[[layers]]
type = "Embedding"
[[layers]]
type = "PositionalEmbedding"
[[layers]]
type = "Block"
[[layers]]
type = "TemporalDense"
[[layers]]
type = "CrossEntropyLoss"
"""


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.conftest import TINY_TEXT

    path = tmp_path_factory.mktemp("kinds") / "plays.txt"
    path.write_text(TINY_TEXT * 4, encoding="utf-8")
    return path


def _train(corpus: Path, out: Path, family: str, kind: str, *extra: str) -> None:
    flags = ["--corpus", str(corpus), "--out", str(out), *TINY, *KIND_FLAGS[kind], *extra]
    if family == "stack":
        layers = out.parent / "layers.toml"
        layers.write_text(STACK_LAYERS, encoding="utf-8")
        flags = ["--model", "stack", "--layers", str(layers), *flags]
    else:
        flags += ["--n-layer", "1"]
    assert train_main(flags) == 0


@pytest.mark.parametrize(("flags", "kind", "vocab_size"), [
    ([], "bpe", 300),  # the preset's tokenizer, the flag's size (2,048 is more than the tiny corpus has)
    (["--tokenizer", "char"], "char", None),  # a named tokenizer brings its own size or none
    (["--tokenizer", "word", "--vocab-size", "60"], "word", None),
])
def test_the_cpu_bpe_preset_brings_its_tokenizer_unless_one_is_named(
        flags: list[str], kind: str, vocab_size: int | None, corpus: Path, tmp_path: Path) -> None:
    from textgen_core.training.presets import get_preset

    preset, cpu = get_preset("cpu-bpe"), get_preset("cpu")
    assert preset["tokenizer"] == {"tokenizer": "bpe", "vocab_size": 2048}
    assert preset["model"] == cpu["model"]  # the cpu shape and schedule, on Muon
    assert preset["train"] == {**cpu["train"], "optimizer": "muon", "muon_lr": 0.02}
    out = tmp_path / "m.pt"
    size = ["--vocab-size", "300"] if not flags else []
    assert train_main(["--preset", "cpu-bpe", "--corpus", str(corpus), "--out", str(out), *TINY,
                       "--n-layer", "1", *size, *flags]) == 0
    tokenizer = load_checkpoint(out)["tokenizer"]
    assert tokenizer["type"] == kind
    if vocab_size is not None:
        assert runtime_vocab_size(out) == vocab_size


def runtime_vocab_size(checkpoint: Path) -> int:
    return gpt_from_checkpoint(load_checkpoint(checkpoint))[1].vocab_size


@pytest.mark.parametrize("family", ["gpt", "stack"])
@pytest.mark.parametrize("kind", ["char", "word", "bpe"])
def test_train_resume_export_and_sample_the_same_as_torch(
    family: str, kind: str, corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / f"{family}-{kind}.pt"
    _train(corpus, out, family, kind)
    payload = load_checkpoint(out)
    assert payload["tokenizer"]["type"] == kind
    flags = [*(["--model", "stack"] if family == "stack" else []), "--resume", "--out", str(out),
             "--max-iters", "4", "--device", "cpu", "--sample-tokens", "0"]
    assert train_main(flags) == 0
    payload = load_checkpoint(out)
    assert payload["train_state"]["step"] == 4

    onnx_path = export_checkpoint(str(out), "onnx", report=lambda line: None)[0]
    generator = runtime.load(onnx_path)
    assert generator.tokenizer.to_dict() == payload["tokenizer"]
    prompt = "To be, or not"
    ours = list(generator.generate(prompt, max_new_tokens=24, temperature=0))
    if family == "gpt":
        model, tokenizer = gpt_from_checkpoint(payload)
        theirs = list(torch_generate(model, tokenizer, prompt, max_new_tokens=24, temperature=0))
    else:
        model, tokenizer = stack_from_checkpoint(payload)
        theirs = list(generate(model, tokenizer, prompt, max_new_tokens=24, temperature=0))
    assert ours == theirs and len(ours) >= 24

    capsys.readouterr()
    assert chat_main(["--model", str(onnx_path), "--prompt", prompt, "--max-new-tokens", "12",
                      "--seed", "1"]) == 0
    assert capsys.readouterr().out.strip()
    assert evaluate_main([str(out), "--device", "cpu"]) == 0
    line = capsys.readouterr().out
    assert "bits/char" in line


def test_fine_tuning_on_new_characters_extends_or_maps_them_to_unk(
    corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = tmp_path / "base.pt"
    _train(corpus, base, "gpt", "char")
    older = tmp_path / "older.txt"
    older.write_text(corpus.read_text(encoding="utf-8").replace("e", "é") + "Æ\n", encoding="utf-8")
    capsys.readouterr()
    flags = ["--init-from", str(base), "--corpus", str(older), "--device", "cpu", "--sample-tokens",
             "0", "--max-iters", "2", "--eval-interval", "2", "--eval-iters", "1"]
    assert train_main([*flags, "--out", str(tmp_path / "x.pt")]) == 1
    assert "--new-tokens extend or unk" in capsys.readouterr().err
    before = load_checkpoint(base)["tokenizer"]["chars"]
    assert train_main([*flags, "--out", str(tmp_path / "ext.pt"), "--new-tokens", "extend"]) == 0
    extended = load_checkpoint(tmp_path / "ext.pt")
    assert extended["tokenizer"]["chars"] == [*before, "Æ", "é"]
    assert extended["model"]["wte.weight"].shape[0] == len(before) + 2
    assert train_main([*flags, "--out", str(tmp_path / "unk.pt"), "--new-tokens", "unk"]) == 0
    mapped = load_checkpoint(tmp_path / "unk.pt")
    assert mapped["tokenizer"]["unk"] is True and mapped["model_config"]["vocab_size"] == len(before) + 1

    capsys.readouterr()
    assert evaluate_main([str(base), "--corpus", str(older), "--device", "cpu"]) == 0
    assert "unknown character(s) left out" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--tokenizer", "sentencepiece"], "--tokenizer 'sentencepiece' is unknown"),
        (["--tokenizer", "word", "--vocab-size", "2"], "needs at least 3"),
        (["--tokenizer", "bpe", "--vocab-size", "10"], "needs at least 257"),
        (["--vocab-size", "500"], "applies to --tokenizer word and bpe"),
        (["--new-tokens", "extend"], "--new-tokens applies to fine-tuning"),
        (["--tokenizer", "word", "--block-size", "4000"], "fewer than --block-size"),
    ],
)
def test_bad_tokenizer_input_is_one_line(flags: list[str], message: str, corpus: Path, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    # --dtype fp32: no bf16 measurement of a 4,000-position shape before the data is checked
    args = ["--corpus", str(corpus), "--out", str(tmp_path / "m.pt"), "--device", "cpu",
            "--preset", "nano", "--dtype", "fp32", *flags]
    assert train_main(args) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and message in err
