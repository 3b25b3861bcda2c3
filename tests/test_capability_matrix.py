"""Every model family through every capability, as the user types it (issue 15).

Rows are the families (the GPT, the GAN, a layer stack of attention blocks, a layer stack with an
LSTM); columns are what a user does with one (the README's "Capability matrix" table is this
table). Each cell runs the command line a user would type, at tiny scale (`--preset nano`, a few
steps, the sonnets of examples/corpora/), and checks what the command promises. Training cells run
the CLI's `main(argv)` in this process; `torchrun` runs as the user runs it.

Run with `pytest -m matrix` (about 8 minutes on 2 cores); `.ci/run` runs it.
"""

from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from export.cli import main as export_main
from runtime.chat import main as chat_main
from textgen_core.evaluate import main as evaluate_main
from textgen_core.sample import main as sample_main
from textgen_core.train import main as train_main
from textgen_core.training.metrics_log import read_metrics

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO / "examples" / "corpora" / "sonnets.txt"
FAMILIES = {
    "gpt": [],
    "gan": ["--model", "gan"],
    "stack-attention": ["--model", "stack", "--layers", str(REPO / "examples/stacks/small_transformer.toml")],
    "stack-lstm": ["--model", "stack", "--layers", str(REPO / "examples/stacks/lstm.toml")],
}
KIND = {"gpt": "gpt", "gan": "gan", "stack-attention": "stack", "stack-lstm": "stack"}
TINY = ["--preset", "nano", "--device", "cpu", "--corpus", str(CORPUS), "--max-iters", "12",
        "--eval-interval", "6", "--checkpoint-interval", "6"]
PARAMS = pytest.mark.parametrize("family", list(FAMILIES))

pytestmark = [pytest.mark.matrix, pytest.mark.slow, pytest.mark.usefixtures("one_torch_thread")]


def _ok(code: int, capsys: pytest.CaptureFixture[str]) -> str:
    captured = capsys.readouterr()
    assert code == 0, captured.err[-2000:]
    assert "Traceback" not in captured.err
    return captured.out


def _val(path: Path, family: str) -> float:
    state = torch.load(path, weights_only=True)["train_state"]
    return state["val_nll" if family == "gan" else "val_loss"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One `train --preset nano` checkpoint per family (the first column)."""
    root = tmp_path_factory.mktemp("matrix")
    torch.set_num_threads(1)
    paths = {}
    for family, select in FAMILIES.items():
        out = root / f"{family}.pt"
        assert train_main([*select, *TINY, "--out", str(out)]) == 0, family
        paths[family] = out
    return paths


@PARAMS
def test_train_with_preset_nano(family: str, trained: dict[str, Path]) -> None:
    payload = torch.load(trained[family], weights_only=True)
    assert payload["kind"] == KIND[family] and payload["train_state"]["step"] == 12
    vocab = payload["model_config"]["vocab_size"]
    assert _val(trained[family], family) < math.log(vocab)  # learnt something in 12 steps


@PARAMS
def test_config_file_picks_the_family(family: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = KIND[family]
    lines = [f'model = "{model}"', 'preset = "nano"', f'corpus = "{CORPUS}"', 'device = "cpu"']
    if model == "stack":
        lines.append(f'layers = "{FAMILIES[family][-1]}"')
    lines += ["[train]", "max_iters = 4", "eval_interval = 4", "checkpoint_interval = 4"]
    config = tmp_path / "run.toml"
    config.write_text("\n".join(lines) + "\n")
    out = tmp_path / "m.pt"
    _ok(train_main(["--config", str(config), "--out", str(out)]), capsys)
    assert torch.load(out, weights_only=True)["kind"] == model


@PARAMS
def test_resume_is_exact(family: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                         capsys: pytest.CaptureFixture[str]) -> None:
    args = [*FAMILIES[family], *TINY, "--max-iters", "8", "--checkpoint-interval", "4", "--eval-interval", "4"]
    straight, stopped = tmp_path / "straight.pt", tmp_path / "stopped.pt"
    _ok(train_main([*args, "--out", str(straight)]), capsys)
    monkeypatch.setenv("TEXTGEN_STEP_LIMIT", "4")
    _ok(train_main([*args, "--out", str(stopped)]), capsys)
    monkeypatch.delenv("TEXTGEN_STEP_LIMIT")
    _ok(train_main([*FAMILIES[family][:2], "--resume", "--out", str(stopped), "--device", "cpu"]), capsys)
    a, b = (torch.load(p, weights_only=True) for p in (straight, stopped))
    assert b["train_state"]["step"] == 8
    for name, tensor in a["model"].items():
        assert torch.equal(tensor, b["model"][name]), name


@PARAMS
def test_init_from(family: str, trained: dict[str, Path], tmp_path: Path,
                   capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "tuned.pt"
    _ok(train_main([*FAMILIES[family], "--init-from", str(trained[family]), *TINY, "--max-iters", "4",
                    "--out", str(out)]), capsys)
    tuned = torch.load(out, weights_only=True)
    assert tuned["kind"] == KIND[family] and tuned["train_state"]["step"] == 4


@PARAMS
def test_time_budget(family: str, tmp_path: Path) -> None:
    """`--time-budget` instead of --max-iters: an evaluated checkpoint that records the steps the
    budget allowed as its schedule."""
    out = tmp_path / "budget.pt"
    cut = TINY.index("--max-iters")
    flags = TINY[:cut] + TINY[cut + 2:]
    assert train_main([*FAMILIES[family], *flags, "--time-budget", "0.03", "--out", str(out)]) == 0
    payload = torch.load(out, weights_only=True)
    assert payload["train_config"]["max_iters"] == payload["train_state"]["step"] > 0
    assert math.isfinite(_val(out, family))


@PARAMS
def test_compile_on_the_cpu(family: str, tmp_path: Path) -> None:
    """A process of its own: inductor's warnings and caches stay out of this one."""
    out = tmp_path / "compiled.pt"
    result = subprocess.run([sys.executable, "-m", "textgen_core.train", *FAMILIES[family], *TINY,
                             "--max-iters", "2", "--compile", "on", "--out", str(out)],
                            capture_output=True, text=True, timeout=900,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr[-3000:]
    assert torch.load(out, weights_only=True)["train_state"]["step"] == 2


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@PARAMS
def test_torchrun_two_processes_write_one_checkpoint(family: str, tmp_path: Path) -> None:
    """Rank 0 alone writes and reports; the loss is that of one process at the same global batch."""
    batch = {"gan": 8, "gpt": 8, "stack-attention": 8, "stack-lstm": 8}[family]
    common = [*FAMILIES[family], *TINY, "--max-iters", "20", "--eval-interval", "20",
              "--checkpoint-interval", "20"]
    single, ddp = tmp_path / "single" / "m.pt", tmp_path / "ddp" / "m.pt"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, "-m", "textgen_core.train", *common, "--batch-size", str(2 * batch),
                    "--out", str(single)], check=True, capture_output=True, timeout=600, env=env)
    for attempt in range(2):
        result = subprocess.run(
            [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_addr=127.0.0.1",
             f"--master_port={_free_port()}", "-m", "textgen_core.train", *common,
             "--batch-size", str(batch), "--out", str(ddp), "--overwrite"],
            capture_output=True, text=True, timeout=600, env=env)
        # gloo's C++ teardown rarely aborts a worker at interpreter exit after everything was saved
        # (see tests/textgen_core/training/test_distributed.py); such a run is repeated once.
        if result.returncode == 0 or "terminate called" not in result.stderr or attempt:
            break
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count(f"saved {ddp}") == 1
    payload = torch.load(ddp, weights_only=True)
    assert payload["train_state"]["world_size"] == 2 and payload["train_state"]["step"] == 20
    assert len(payload["train_state"]["rng"]["batch_by_rank"]) == 2
    assert sorted(p.name for p in ddp.parent.iterdir()) == ["m.loss.png", "m.metrics.jsonl", "m.pt"]
    assert _val(ddp, family) == pytest.approx(_val(single, family), abs=0.3)


@PARAMS
def test_evaluate(family: str, trained: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    out = _ok(evaluate_main([str(trained[family]), "--device", "cpu", "--num-samples", "20"]
                            if family == "gan" else [str(trained[family]), "--device", "cpu"]), capsys)
    assert str(CORPUS) in out  # measured on the corpus it was trained on


@PARAMS
def test_sample_with_torch(family: str, trained: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    extra = ["--num-samples", "3"] if family == "gan" else ["--prompt", "Thy ", "--max-new-tokens", "20"]
    out = _ok(sample_main([str(trained[family]), "--seed", "1", "--device", "cpu", *extra]), capsys)
    assert out.strip()


@pytest.fixture(scope="module")
def exported(trained: dict[str, Path]) -> dict[str, dict[str, Path]]:
    files = {}
    for family, path in trained.items():
        assert export_main(["onnx", str(path)]) == 0, family
        assert export_main(["torchscript", str(path)]) == 0, family
        files[family] = {"onnx": path.with_suffix(".onnx"), "ts": path.with_suffix(".ts")}
    return files


@PARAMS
@pytest.mark.parametrize("fmt", ["onnx", "ts"])
def test_export(family: str, fmt: str, exported: dict[str, dict[str, Path]]) -> None:
    assert exported[family][fmt].stat().st_size > 0


@PARAMS
@pytest.mark.parametrize("fmt", ["onnx", "ts"])
def test_runtime_samples_the_exported_file(family: str, fmt: str, exported: dict[str, dict[str, Path]],
                                           capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    extra = ["--num-samples", "2"] if family == "gan" else ["--prompt", "Thy ", "--max-new-tokens", "20"]
    trust = ["--trust-torchscript"] if fmt == "ts" else []
    out = _ok(chat_main(["--model", str(exported[family][fmt]), *trust, "--seed", "1", *extra]), capsys)
    assert out.strip()


@PARAMS
def test_export_web(family: str, trained: dict[str, Path], tmp_path: Path,
                    capsys: pytest.CaptureFixture[str]) -> None:
    """The page's folder; tests/export/test_web.py samples such pages in headless Chromium."""
    folder = tmp_path / "web"
    _ok(export_main(["web", str(trained[family]), "-o", str(folder)]), capsys)
    settings = json.loads((folder / "textgen.json").read_text(encoding="utf-8"))
    assert settings["kind"] == KIND[family]
    assert (folder / "index.html").is_file() and (folder / "model.onnx").is_file()


def test_metrics_of_a_matrix_run_are_json(trained: dict[str, Path]) -> None:
    for path in trained.values():
        records = read_metrics(path.with_suffix(".metrics.jsonl"))
        assert records[0]["event"] == "start" and json.dumps(records)
