"""`python -m textgen_core.train --model gan`: files written, exact resume, bad input."""

import json
from pathlib import Path

import pytest
import torch

from textgen_core.train import main
from textgen_core.training.checkpoint import load_checkpoint


def test_run_writes_checkpoint_metrics_and_both_loss_curves(tiny_gan_checkpoint: Path) -> None:
    payload = load_checkpoint(tiny_gan_checkpoint, kind="gan")
    assert payload["tokenizer"]["type"] == "word"
    assert set(payload["optimizer"]) == {"generator", "discriminator"}
    assert any(k.startswith("generator.") for k in payload["model"])
    assert any(k.startswith("discriminator.") for k in payload["model"])
    assert payload["train_state"]["step"] == 12
    records = [json.loads(line) for line in
               tiny_gan_checkpoint.with_suffix(".metrics.jsonl").read_text().splitlines()]
    phases = {r.get("phase") for r in records if r["event"] == "train"}
    assert phases == {"mle", "adversarial"}
    assert tiny_gan_checkpoint.with_suffix(".loss.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("critic_input", ["straight-through", "gumbel"])
def test_resume_restores_both_players_and_both_optimizers(
    tiny_gan_flags: list[str], sentence_corpus_file: Path, tmp_path: Path, critic_input: str
) -> None:
    """Also with the Gumbel-softmax critic input, whose noise and annealed inverse temperature
    (over --gumbel-anneal-steps, not --max-iters) a resume continues exactly."""
    common = [*tiny_gan_flags, "--corpus", str(sentence_corpus_file), "--mle-iters", "2",
              "--eval-interval", "100", "--checkpoint-interval", "100",
              "--critic-input", critic_input, "--gumbel-anneal-steps", "2", "--gumbel-max-beta", "10"]
    straight, split = tmp_path / "straight.pt", tmp_path / "split.pt"
    assert main([*common, "--out", str(straight), "--max-iters", "5"]) == 0
    assert main([*common, "--out", str(split), "--max-iters", "3"]) == 0
    assert main(["--model", "gan", "--out", str(split), "--resume", "--max-iters", "5"]) == 0
    a, b = load_checkpoint(straight), load_checkpoint(split)
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key
    for player in ("generator", "discriminator"):
        state_a, state_b = a["optimizer"][player]["state"], b["optimizer"][player]["state"]
        assert state_a.keys() == state_b.keys() and state_a
        for index in state_a:
            assert torch.equal(state_a[index]["exp_avg"], state_b[index]["exp_avg"])


@pytest.mark.parametrize(("extra", "message"), [
    (["--vocab-size", "2"], "--vocab-size (2) must be larger than the 2 special tokens"),
    (["--seq-len", "0"], "--seq-len must be a positive integer, got 0"),
    (["--seq-len", "-3"], "--seq-len must be a positive integer, got -3"),
    (["--batch-size", "5000"], "fewer than a batch (5000)"),
    (["--n-layer", "3"], "--n-layer do(es) not apply to --model gan"),
    (["--mle-iters", "50"], "--mle-iters (50) must not exceed --max-iters (10)"),
    (["--gumbel-max-beta", "0.5"], "--gumbel-max-beta must be a finite number >= 1, got 0.5"),
    (["--gumbel-anneal-steps", "0"], "--gumbel-anneal-steps must be a positive integer, got 0"),
])
def test_bad_input_is_one_line(tiny_gan_flags: list[str], sentence_corpus_file: Path, tmp_path: Path,
                               capsys: pytest.CaptureFixture[str], extra: list[str], message: str) -> None:
    code = main([*tiny_gan_flags, "--corpus", str(sentence_corpus_file), "--out", str(tmp_path / "g.pt"),
                 "--max-iters", "10", *extra])
    err = capsys.readouterr().err
    assert code == 1
    assert message in " ".join(err.split()) and "Traceback" not in err
    assert not (tmp_path / "g.pt").exists()


def test_gpt_checkpoint_where_a_gan_is_needed(tiny_gpt_checkpoint: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    for args in (["--resume", "--out", str(tiny_gpt_checkpoint)],
                 ["--init-from", str(tiny_gpt_checkpoint), "--out", str(tmp_path / "g.pt")]):
        assert main(["--model", "gan", *args]) == 1
        assert "holds a 'gpt' model, but this command needs a 'gan' model" in capsys.readouterr().err


def test_gan_checkpoint_where_a_gpt_is_needed(tiny_gan_checkpoint: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--init-from", str(tiny_gan_checkpoint), "--out", str(tmp_path / "g.pt")]) == 1
    assert "holds a 'gan' model, but this command needs a 'gpt' model" in capsys.readouterr().err


def test_config_file_selects_the_gan(sentence_corpus_file: Path, tmp_path: Path) -> None:
    config = tmp_path / "gan.toml"
    config.write_text('model = "gan"\nseq_len = 8\nvocab_size = 30\nn_embd = 16\nn_head = 2\n'
                      'n_noise_blocks = 1\ncritic_layers = 1\n[train]\nmax_iters = 3\nmle_iters = 1\n'
                      "batch_size = 8\ncritic_steps = 1\n")
    out = tmp_path / "g.pt"
    assert main(["--config", str(config), "--corpus", str(sentence_corpus_file), "--out", str(out)]) == 0
    payload = load_checkpoint(out, kind="gan")
    assert payload["model_config"]["seq_len"] == 8 and payload["train_state"]["step"] == 3


@pytest.mark.slow
def test_ctrl_c_saves_both_players_and_exits_130(tiny_gan_flags: list[str], sentence_corpus_file: Path,
                                                 tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys

    out = tmp_path / "g.pt"
    repo = Path(__file__).resolve().parents[3]
    child = subprocess.Popen(
        [sys.executable, "-m", "textgen_core.train", *tiny_gan_flags, "--corpus", str(sentence_corpus_file),
         "--out", str(out), "--max-iters", "100000", "--mle-iters", "2", "--eval-interval", "3",
         "--checkpoint-interval", "100000"],
        cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert child.stdout is not None
    for line in child.stdout:  # training is under way once the first evaluation is printed
        if line.startswith("step 3"):
            break
    child.send_signal(signal.SIGINT)
    _, err = child.communicate(timeout=120)
    assert child.returncode == 130, err
    payload = load_checkpoint(out, kind="gan")
    assert 3 <= payload["train_state"]["step"] < 100000
    assert set(payload["optimizer"]) == {"generator", "discriminator"}


def test_a_resume_may_change_the_critic_input_but_not_the_shape(
    tiny_gan_flags: list[str], sentence_corpus_file: Path, tmp_path: Path,
    capsys: pytest.CaptureFixture[str]
) -> None:
    """An adversarial phase with another critic input continued from one warm-up (docs/gan.md)."""
    out = tmp_path / "g.pt"
    assert main([*tiny_gan_flags, "--corpus", str(sentence_corpus_file), "--out", str(out),
                 "--max-iters", "3", "--mle-iters", "3"]) == 0
    assert main(["--model", "gan", "--out", str(out), "--resume", "--max-iters", "5",
                 "--critic-input", "gumbel", "--gumbel-anneal-steps", "2"]) == 0
    payload = load_checkpoint(out, kind="gan")
    assert payload["model_config"]["critic_input"] == "gumbel"
    assert payload["train_config"]["gumbel_anneal_steps"] == 2
    capsys.readouterr()
    assert main(["--model", "gan", "--out", str(out), "--resume", "--max-iters", "6",
                 "--n-embd", "32"]) == 1
    assert "--resume keeps the saved model shape; drop --n-embd" in capsys.readouterr().err
