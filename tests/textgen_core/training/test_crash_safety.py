"""Killing training at any moment leaves a loadable checkpoint, and the run can be resumed."""

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from textgen_core.training.checkpoint import load_checkpoint

pytestmark = pytest.mark.slow


def start_training(corpus: Path, out: Path, *extra: str) -> subprocess.Popen[str]:
    args = [sys.executable, "-m", "textgen_core.train", "--corpus", str(corpus), "--out", str(out),
            "--preset", "nano", "--device", "cpu", "--sample-tokens", "0", "--eval-interval", "1000",
            "--checkpoint-interval", "1", "--max-iters", "3000", *extra]
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(path: Path, process: subprocess.Popen[str], timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "training never wrote a checkpoint"
        time.sleep(0.05)


def test_sigkill_at_random_moments_leaves_loadable_checkpoints(tiny_corpus_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "gpt.pt"
    rng = random.Random(7)
    steps = []
    for attempt in range(4):
        process = start_training(tiny_corpus_file, out, *(["--resume"] if attempt else []))
        if attempt == 0:
            wait_for(out, process)
        time.sleep(rng.uniform(0.3, 2.5) + (3.0 if attempt else 0.0))  # resumes start python again
        process.kill()
        process.communicate()
        payload = load_checkpoint(out, kind="gpt")
        steps.append(payload["train_state"]["step"])
    assert steps == sorted(steps) and steps[-1] > 0
    final = subprocess.run(
        [sys.executable, "-m", "textgen_core.train", "--resume", "--out", str(out),
         "--max-iters", str(steps[-1] + 5), "--sample-tokens", "0"],
        capture_output=True, text=True, timeout=300,
    )
    assert final.returncode == 0, final.stderr
    assert load_checkpoint(out)["train_state"]["step"] == steps[-1] + 5
    assert not list(tmp_path.glob(".gpt.pt.*.tmp"))


def test_ctrl_c_saves_a_final_checkpoint(tiny_corpus_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "gpt.pt"
    process = start_training(tiny_corpus_file, out, "--checkpoint-interval", "1000")
    # The first checkpoint only comes at step 1000, so a file means the Ctrl-C save worked.
    metrics = out.with_suffix(".metrics.jsonl")
    wait_for(metrics, process)
    time.sleep(1.5)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "interrupted: saved" in stdout
    assert f"continue with `python -m textgen_core.train --resume --out {out}`" in " ".join(stdout.split())
    step = load_checkpoint(out)["train_state"]["step"]
    assert 0 < step < 3000


def test_ctrl_c_before_the_loop_names_the_resume_command(tiny_gpt_checkpoint: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    import textgen_core.train as train_cli

    out = tmp_path / "m.pt"
    out.write_bytes(tiny_gpt_checkpoint.read_bytes())

    def interrupted(*args: object) -> int:  # Ctrl-C while the run is still being set up
        raise KeyboardInterrupt

    monkeypatch.setattr(train_cli, "_train", interrupted)
    assert train_cli.main(["--resume", "--out", str(out)]) == 130
    err = " ".join(capsys.readouterr().err.split())
    assert f"the last saved checkpoint {out} is intact; continue with " \
           f"`python -m textgen_core.train --resume --out {out}`" in err
    assert train_cli.main(["--resume", "--out", str(tmp_path / "none.pt")]) == 130  # nothing saved yet
    assert "interrupted; the last saved checkpoint is intact" in capsys.readouterr().err
