"""One train CLI for every family (issue 15): the family is picked by --model, the config file's
`model` key or the checkpoint being resumed; a flag of another family, a config value of the
wrong type and a resume on changed data are one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from textgen_core.train import main as train_main

pytestmark = pytest.mark.usefixtures("one_torch_thread")

REPO = Path(__file__).resolve().parents[2]
LAYERS = REPO / "examples" / "stacks" / "small_transformer.toml"
SONNETS = REPO / "examples" / "corpora" / "sonnets.txt"  # enough sentences for the GAN too
NANO = ["--preset", "nano", "--device", "cpu", "--max-iters", "4", "--eval-interval", "4",
        "--checkpoint-interval", "4"]


def _error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err, err
    return err


@pytest.mark.parametrize(("args", "message"), [
    (["--layers", str(LAYERS)], "--layers do(es) not apply to --model gpt"),
    (["--model", "gan", "--n-layer", "2"], "--n-layer do(es) not apply to --model gan"),
    (["--model", "stack", "--seq-len", "8"], "--seq-len do(es) not apply to --model stack"),
    (["--model", "gan", "--preset", "cpu"], "unknown --preset 'cpu' for --model gan; choose from: nano"),
])
def test_a_flag_of_another_family_is_one_line(args: list[str], message: str, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert train_main([*args, "--out", str(tmp_path / "m.pt")]) == 1
    assert message in _error(capsys)
    assert not (tmp_path / "m.pt").exists()


@pytest.mark.parametrize(("toml", "message"), [
    ('model = "gan"\nbeta1 = "0.5"\n', 'beta1 must be a number, got \'0.5\''),
    ('model = "stack"\n[train]\npatience = 2.5\n', "patience must be an integer, got 2.5"),
    ('model = "rnn"\n', "model 'rnn' is unknown; choose from: gpt, gan, stack"),
    ('bias = "yes"\n', "bias must be true or false, got 'yes'"),
    ('corpus = 7\n', "corpus must be a string, got 7"),
])
def test_config_values_are_checked(toml: str, message: str, tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "run.toml"
    config.write_text(toml)
    assert train_main(["--config", str(config), "--out", str(tmp_path / "m.pt")]) == 1
    assert message in _error(capsys)


def test_config_model_key_trains_a_stack(tiny_corpus_file: Path, tmp_path: Path) -> None:
    config = tmp_path / "run.toml"
    config.write_text(f'model = "stack"\nlayers = "{LAYERS}"\ncorpus = "{tiny_corpus_file}"\n')
    out = tmp_path / "s.pt"
    assert train_main(["--config", str(config), *NANO, "--out", str(out)]) == 0
    assert torch.load(out, weights_only=True)["kind"] == "stack"


@pytest.mark.parametrize("family", [["--model", "stack", "--layers", str(LAYERS)], ["--model", "gan"]])
def test_resume_names_the_family(family: list[str], tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    """--model picks the family for a resume too; without it the command is a GPT's, refused for
    the checkpoint's kind."""
    out = tmp_path / "m.pt"
    assert train_main([*family, "--corpus", str(SONNETS), *NANO, "--out", str(out)]) == 0
    assert train_main(["--resume", "--out", str(out), "--max-iters", "6"]) == 1
    assert "model, but this command needs a 'gpt' model" in _error(capsys)
    assert train_main([*family[:2], "--resume", "--out", str(out), "--max-iters", "6"]) == 0
    assert torch.load(out, weights_only=True)["train_state"]["step"] == 6


@pytest.mark.parametrize("family", [[], ["--model", "stack", "--layers", str(LAYERS)], ["--model", "gan"]])
def test_resume_on_a_changed_corpus_is_refused(family: list[str], tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    text = SONNETS.read_text(encoding="utf-8")
    corpus = tmp_path / "c.txt"
    corpus.write_text(text)
    out = tmp_path / "m.pt"
    assert train_main([*family, "--corpus", str(corpus), *NANO, "--out", str(out)]) == 0
    saved = out.read_bytes()
    corpus.write_text(text.replace("beauty", "beautie"))
    capsys.readouterr()
    assert train_main([*family[:2], "--resume", "--out", str(out), "--max-iters", "6"]) == 1
    assert "changed since the checkpoint was saved" in _error(capsys)
    assert out.read_bytes() == saved
