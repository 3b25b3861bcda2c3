"""Checkpoints that `torch.load(weights_only=True)` accepts but that were crafted to crash, hang or
exhaust an entry point (issue 16, items 2, 3 and 13). Each is built from a real tiny checkpoint in
tmp_path and given to the command a user would type, in a subprocess with a timeout as hang
guard: exit code 1, one line on stderr, no traceback, no crash, the file left as it was."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from textgen_core.errors import CheckpointError
from textgen_core.models.size_limits import MAX_LAYERS
from textgen_core.train import main as train_main
from textgen_core.training.checkpoint import load_checkpoint
from textgen_core.training.resume_checks import guard_optimizer

pytestmark = pytest.mark.usefixtures("one_torch_thread")

ROOT = Path(__file__).resolve().parents[3]
TINY_GPT = ["--n-layer", "1", "--n-head", "2", "--n-embd", "16", "--block-size", "16",
            "--batch-size", "4", "--eval-interval", "2", "--eval-iters", "1",
            "--checkpoint-interval", "2", "--sample-tokens", "0", "--warmup-iters", "0",
            "--max-iters", "2", "--device", "cpu"]
ENTRY_POINTS = {
    "train --resume": lambda f: ["textgen_core.train", "--resume", "--out", str(f), "--max-iters", "3",
                                 "--device", "cpu"],
    "evaluate": lambda f: ["textgen_core.evaluate", str(f)],
    "sample": lambda f: ["textgen_core.sample", str(f), "--prompt", "To", "--max-new-tokens", "2"],
    "export onnx": lambda f: ["export", "onnx", str(f)],
}


@pytest.fixture(scope="module")
def gpt_run(tiny_corpus_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A resumable GPT run (optimizer, RNG and data position saved at step 2)."""
    out = tmp_path_factory.mktemp("run") / "gpt.pt"
    assert train_main([*TINY_GPT, "--corpus", str(tiny_corpus_file), "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def muon_run(tiny_corpus_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("muon") / "gpt.pt"
    assert train_main([*TINY_GPT, "--optimizer", "muon", "--corpus", str(tiny_corpus_file),
                       "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def stack_run(tiny_corpus_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("stack")
    layers = folder / "layers.toml"
    layers.write_text('[[layers]]\ntype = "Embedding"\n[[layers]]\ntype = "PositionalEmbedding"\n'
                      '[[layers]]\ntype = "LSTM"\n[[layers]]\ntype = "TemporalDense"\n'
                      '[[layers]]\ntype = "CrossEntropyLoss"\n', encoding="utf-8")
    out = folder / "stack.pt"
    assert train_main(["--model", "stack", "--layers", str(layers), "--corpus", str(tiny_corpus_file),
                       "--out", str(out), "--n-embd", "8", "--block-size", "8", "--batch-size", "4",
                       "--max-iters", "2", "--warmup-iters", "0", "--eval-interval", "2",
                       "--eval-iters", "1", "--sample-tokens", "0", "--device", "cpu"]) == 0
    return out


def tampered(source: Path, folder: Path, edit: Callable[[dict[str, Any]], object]) -> Path:
    payload = torch.load(source, weights_only=True)
    edit(payload)
    path = folder / "hostile.pt"
    torch.save(payload, path)
    torch.load(path, weights_only=True)  # the attack needs a file the safe loader accepts
    return path


def refused(path: Path, argv: list[str], message: str) -> None:
    """`python -m argv` ends with exit code 1 and one line naming `message`, and `path` is kept."""
    before = path.read_bytes()
    result = subprocess.run([sys.executable, "-m", *argv], capture_output=True, text=True, timeout=300,
                            cwd=path.parent, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode != -signal.SIGSEGV, "crashed"
    err = result.stderr.strip()
    assert result.returncode == 1, (result.returncode, err[-2000:])
    assert "Traceback" not in err and len(err.splitlines()) == 1, err[-2000:]
    assert message in err, err
    assert path.read_bytes() == before


def first_moments(payload: dict[str, Any]) -> dict[str, Any]:
    """The state of a 2-d parameter of the optimizer (the first one that has moments)."""
    return next(s for s in payload["optimizer"]["state"].values() if s["exp_avg"].dim() == 2)


# --- item 2: optimizer state that a fused kernel would trust --------------------------------

def _wrong_shape(p: dict[str, Any]) -> None:
    first_moments(p)["exp_avg"] = torch.zeros(3)
    first_moments(p)["exp_avg_sq"] = torch.zeros(3)


def _stride_zero(p: dict[str, Any]) -> None:
    moments = first_moments(p)
    moments["exp_avg"] = torch.zeros(1).expand(moments["exp_avg"].shape)


def _transposed(p: dict[str, Any]) -> None:
    moments = first_moments(p)
    moments["exp_avg"] = moments["exp_avg"].t().contiguous().t()


def _shared(p: dict[str, Any]) -> None:
    moments = first_moments(p)
    moments["exp_avg_sq"] = moments["exp_avg"]


def _step_vector(p: dict[str, Any]) -> None:
    first_moments(p)["step"] = torch.zeros(1000)


def _integer_moment(p: dict[str, Any]) -> None:
    moments = first_moments(p)
    moments["exp_avg"] = torch.zeros(moments["exp_avg"].shape, dtype=torch.int64)


def _missing_moment(p: dict[str, Any]) -> None:
    del first_moments(p)["exp_avg_sq"]


def _one_group(p: dict[str, Any]) -> None:
    groups = p["optimizer"]["param_groups"]
    groups[0]["params"] += groups.pop()["params"]


def _other_ids(p: dict[str, Any]) -> None:
    removed = p["optimizer"]["param_groups"][0]["params"].pop()
    p["optimizer"]["state"].pop(removed, None)


def _bad_betas(p: dict[str, Any]) -> None:
    p["optimizer"]["param_groups"][0]["betas"] = (0.9, 7.0)


def _weight_stride_zero(p: dict[str, Any]) -> None:
    p["model"]["wte.weight"] = torch.zeros(1).expand(p["model"]["wte.weight"].shape)


def _weight_shape(p: dict[str, Any]) -> None:
    p["model"]["ln_f.weight"] = torch.zeros(7)


@pytest.mark.parametrize(("edit", "message"), [
    (_wrong_shape, "exp_avg has shape (3,), the parameter's is"),
    (_stride_zero, "is a strided, broadcast or overlapping view"),
    (_transposed, "is a strided, broadcast or overlapping view"),
    (_shared, "shares its memory with"),
    (_step_vector, "step must be a scalar"),
    (_integer_moment, "not a floating-point type"),
    (_missing_moment, "this optimizer keeps exp_avg, exp_avg_sq, step"),
    (_one_group, "has 1 parameter group(s), this run's optimizer 2"),
    (_other_ids, "parameters; the model has"),
    (_bad_betas, "option betas is (0.9, 7.0)"),
    (_weight_stride_zero, "weight wte.weight is a strided, broadcast or overlapping view"),
    (_weight_shape, "ln_f.weight has shape (7,), the model's is (16,)"),
], ids=lambda v: v.__name__.strip("_") if callable(v) else "")
def test_resume_refuses_optimizer_state_that_does_not_fit(
        edit: Callable[[dict[str, Any]], None], message: str, gpt_run: Path, tmp_path: Path) -> None:
    hostile = tampered(gpt_run, tmp_path, edit)
    refused(hostile, ENTRY_POINTS["train --resume"](hostile), message)


def test_muon_state_is_checked_too(muon_run: Path, tmp_path: Path) -> None:
    def wrong_buffer(p: dict[str, Any]) -> None:
        state = next(s for s in p["optimizer"]["state"].values() if "momentum_buffer" in s)
        state["momentum_buffer"] = torch.zeros(5, 5)

    hostile = tampered(muon_run, tmp_path, wrong_buffer)
    refused(hostile, ENTRY_POINTS["train --resume"](hostile), "momentum_buffer has shape (5, 5)")


def test_a_guarded_optimizer_still_loads_its_own_state() -> None:
    model = torch.nn.Linear(4, 3)
    optimizer = guard_optimizer(torch.optim.AdamW(model.parameters(), fused=True))
    model(torch.randn(2, 4)).sum().backward()
    optimizer.step()
    saved = optimizer.state_dict()
    other = guard_optimizer(torch.optim.AdamW(model.parameters(), fused=True))
    other.load_state_dict(saved)
    assert torch.equal(other.state_dict()["state"][0]["exp_avg"], saved["state"][0]["exp_avg"])
    saved["state"][0]["exp_avg"] = torch.zeros(2)
    with pytest.raises(CheckpointError, match=r"exp_avg has shape \(2,\)"):
        other.load_state_dict(saved)


# --- item 3: sizes bounded before any model is built ----------------------------------------

def _config(**changes: Any) -> Callable[[dict[str, Any]], None]:
    def edit(p: dict[str, Any]) -> None:
        p["model_config"].update(changes)
    edit.__name__ = "_".join(changes)
    return edit


@pytest.mark.parametrize("entry", list(ENTRY_POINTS))
def test_a_billion_layers_is_refused_by_every_entry_point(entry: str, gpt_run: Path, tmp_path: Path) -> None:
    hostile = tampered(gpt_run, tmp_path, _config(n_layer=10**9))
    refused(hostile, ENTRY_POINTS[entry](hostile), f"textgen builds at most {MAX_LAYERS} layers")


@pytest.mark.parametrize(("changes", "message"), [
    (dict(n_embd=2 * 10**6), "more than 50% of this machine's"),
    (dict(block_size=10**9), "contexts of at most 1,048,576 positions"),
    (dict(block_size=10**12), "contexts of at most 1,048,576 positions"),
    (dict(n_layer=float("inf")), "setting 'n_layer' must be an int, got inf"),
    # The largest integer a weights-only pickle carries (LONG1: 255 bytes); LONG4 is refused.
    (dict(n_layer=int("9" * 600)), "digits; a checkpoint's integers fit in 64 bits"),
    (dict(n_layer=True), "setting 'n_layer' must be an int, got True"),
    (dict(dropout=float("nan")), "setting 'dropout' must be a finite float, got nan"),
    (dict(n_head="2"), "setting 'n_head' must be an int, got '2'"),
], ids=lambda v: "-".join(map(str, v))[:30] if isinstance(v, dict) else "")
def test_impossible_gpt_sizes(changes: dict[str, Any], message: str, gpt_run: Path, tmp_path: Path) -> None:
    hostile = tampered(gpt_run, tmp_path, _config(**changes))
    refused(hostile, ENTRY_POINTS["sample"](hostile), message)


@pytest.mark.parametrize(("changes", "message"), [
    (dict(seq_len=10**9), "contexts of at most"),
    (dict(n_noise_blocks=10**6), "at most 256 layers"),
    (dict(n_output_blocks=True), "setting 'n_output_blocks' must be an int, got True"),
    (dict(noise_1d=1), "setting 'noise_1d' must be a bool, got 1"),
    (dict(ffn_hidden=10**12), "more than 50% of this machine's"),
], ids=lambda v: "-".join(map(str, v))[:30] if isinstance(v, dict) else "")
def test_impossible_gan_sizes(changes: dict[str, Any], message: str, tiny_gan_checkpoint: Path,
                              tmp_path: Path) -> None:
    hostile = tampered(tiny_gan_checkpoint, tmp_path, _config(**changes))
    refused(hostile, ["export", "onnx", str(hostile)], message)


# --- item 13: a run state that does not hold what a resume reads ----------------------------

def _state(edit: Callable[[dict[str, Any]], None], name: str) -> Callable[[dict[str, Any]], None]:
    edit.__name__ = name
    return edit


@pytest.mark.parametrize(("edit", "message"), [
    (_state(lambda p: p["train_state"].pop("step"), "no-step"), "train_state has no 'step'"),
    (_state(lambda p: p["train_state"].update(step="12"), "step-text"),
     "train_state step must be an integer >= 0, got '12'"),
    (_state(lambda p: p["train_state"].update(step=-4), "step-negative"), "got -4"),
    (_state(lambda p: p["train_config"].update(bogus=1), "unknown-setting"),
     "train_config has unknown setting(s) 'bogus'"),
    (_state(lambda p: p["train_config"].update(max_iters="many"), "max-iters-text"),
     "train_config is invalid"),
    (_state(lambda p: p["train_state"]["rng"].update(torch=torch.zeros(3, dtype=torch.uint8)), "rng-3"),
     "train_state.rng.torch is not a valid CPU generator state"),
    (_state(lambda p: p["train_state"]["rng"].update(batch=torch.zeros(5056)), "rng-float"),
     "is not a random-generator state"),
    (_state(lambda p: p["train_state"]["rng"].pop("batch"), "rng-missing"), "has no 'batch' state"),
    (_state(lambda p: p["optimizer"].update(param_groups=[]), "no-groups"), "has no parameter groups"),
    (_state(lambda p: p["optimizer"].pop("state"), "no-state"), "is not an optimizer state"),
    (_state(lambda p: p.update(train_state=["step", 3]), "state-list"), "train_state is not a table"),
    (_state(lambda p: p["train_state"].update(val_loss="low"), "loss-text"),
     "train_state val_loss must be a number"),
], ids=lambda v: v.__name__ if callable(v) else "")
def test_resume_refuses_a_malformed_run_state(edit: Callable[[dict[str, Any]], None], message: str,
                                              gpt_run: Path, tmp_path: Path) -> None:
    hostile = tampered(gpt_run, tmp_path, edit)
    refused(hostile, ENTRY_POINTS["train --resume"](hostile), message)


def test_gan_and_stack_run_states_are_checked(tiny_gan_checkpoint: Path, tmp_path: Path) -> None:
    hostile = tampered(tiny_gan_checkpoint, tmp_path,
                       lambda p: p["optimizer"].pop("discriminator"))
    refused(hostile, ["textgen_core.train", "--model", "gan", "--resume", "--out", str(hostile),
                      "--max-iters", "13", "--device", "cpu"], "a 'discriminator' optimizer state")
    payload = load_checkpoint(tiny_gan_checkpoint)  # the untouched file still loads
    assert payload["train_state"]["step"] == 12


def test_a_good_run_still_resumes(gpt_run: Path, tmp_path: Path) -> None:
    copy = tmp_path / "gpt.pt"
    copy.write_bytes(gpt_run.read_bytes())
    assert train_main(["--resume", "--out", str(copy), "--max-iters", "3", "--device", "cpu"]) == 0
    assert load_checkpoint(copy)["train_state"]["step"] == 3


def test_impossible_stack_sizes_and_state(stack_run: Path, tmp_path: Path) -> None:
    def many_layers(p: dict[str, Any]) -> None:
        layers = p["model_config"]["layers"]
        layers[1:1] = [{"type": "Dropout", "p": 0.0}] * 100_000

    def long_positions(p: dict[str, Any]) -> None:
        p["model_config"]["block_size"] = 10**10
        p["model_config"]["layers"][1]["block_size"] = 10**10

    for edit, message in [(many_layers, "has 100,005 layers; textgen builds at most 256"),
                          (long_positions, "contexts of at most 1,048,576 positions")]:
        hostile = tampered(stack_run, tmp_path, edit)
        refused(hostile, ENTRY_POINTS["evaluate"](hostile), message)
    hostile = tampered(stack_run, tmp_path, lambda p: p["train_state"].pop("plateau"))
    refused(hostile, ["textgen_core.train", "--model", "stack", "--resume", "--out", str(hostile),
                      "--max-iters", "3", "--device", "cpu"], "train_state has no 'plateau'")
