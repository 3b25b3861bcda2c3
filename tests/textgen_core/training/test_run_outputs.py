"""What a run writes beside its checkpoint, under contention and a full disk (issue 16, items 6, 7
and 17): one run per --out, "disk full" said as such, and a metrics log without repeated steps."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from textgen_core.errors import CheckpointError
from textgen_core.train import main as train_main
from textgen_core.training.metrics_log import MetricsLog, read_metrics
from textgen_core.training.run_lock import hold_out, lock_path

NANO = ["--preset", "nano", "--device", "cpu", "--sample-tokens", "0"]


def _one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err, err
    return err


@pytest.mark.slow
def test_a_second_run_on_the_same_out_is_refused_and_the_first_finishes(
        tiny_corpus_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "m.pt"
    stderr = tmp_path / "first.err"
    with stderr.open("w") as err_file:
        first = subprocess.Popen(
            [sys.executable, "-m", "textgen_core.train", "--corpus", str(tiny_corpus_file), "--out",
             str(out), *NANO, "--max-iters", "1000000", "--checkpoint-interval", "5",
             "--eval-interval", "1000000"],
            stdout=subprocess.DEVNULL, stderr=err_file, env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        deadline = time.monotonic() + 120
        while not out.exists():  # its first checkpoint: the run is under way
            assert first.poll() is None, stderr.read_text()
            assert time.monotonic() < deadline, "the first run never saved"
            time.sleep(0.2)
        before = sorted(p.name for p in tmp_path.iterdir())
        assert train_main(["--corpus", str(tiny_corpus_file), "--out", str(out), *NANO,
                           "--overwrite"]) == 1
        err = _one_line_error(capsys)
        assert f"{out} is in use by another training run (process {first.pid})" in err
        assert train_main(["--resume", "--out", str(out), "--max-iters", "2000000"]) == 1
        assert f"(process {first.pid})" in _one_line_error(capsys)
        assert first.poll() is None  # neither refused run disturbed it
        assert {p.name for p in tmp_path.iterdir()} >= {n for n in before if not n.endswith(".tmp")}
    finally:
        first.send_signal(signal.SIGINT)
        first.wait(timeout=120)
    assert first.returncode == 130
    assert torch.load(out, weights_only=True)["train_state"]["step"] > 0
    assert not lock_path(out).exists()


def test_a_lock_file_left_by_a_dead_process_does_not_block(tmp_path: Path) -> None:
    out = tmp_path / "m.pt"
    lock_path(out).write_text("999999\n")  # no process holds a lock on it
    with hold_out(out, fresh=True, overwrite=False):
        assert lock_path(out).read_text().strip() == str(os.getpid())
    assert not lock_path(out).exists()


def test_resumed_log_drops_the_steps_after_the_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "m.metrics.jsonl"
    records = [{"event": "start"}] + [{"event": "train", "step": s, "loss": 1.0} for s in range(1, 11)]
    path.write_text("".join(json.dumps(r) + "\n" for r in records) + '{"event": "tr')  # cut by a kill
    log = MetricsLog(path, fresh=False, resume_step=6)
    log.append({"event": "train", "step": 7, "loss": 0.5})
    steps = [r.get("step") for r in read_metrics(path)]
    assert steps == [None, 1, 2, 3, 4, 5, 6, 7]


def test_resume_after_a_kill_logs_each_step_once(tiny_corpus_file: Path, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "m.pt"
    args = ["--corpus", str(tiny_corpus_file), "--out", str(out), *NANO, "--max-iters", "20",
            "--log-interval", "1", "--checkpoint-interval", "5"]
    monkeypatch.setenv("TEXTGEN_STEP_LIMIT", "8")
    assert train_main(args) == 0
    # As if killed after step 8 with the last checkpoint at step 5: put that checkpoint back.
    payload = torch.load(out, weights_only=True)
    assert payload["train_state"]["step"] == 8
    log = out.with_suffix(".metrics.jsonl")
    lines = log.read_text().splitlines()
    monkeypatch.delenv("TEXTGEN_STEP_LIMIT")
    first5 = tmp_path / "five.pt"
    monkeypatch.setenv("TEXTGEN_STEP_LIMIT", "5")
    assert train_main([*args[:3], str(first5), *args[4:]]) == 0
    monkeypatch.delenv("TEXTGEN_STEP_LIMIT")
    os.replace(first5, out)
    log.write_text("\n".join(lines) + "\n")  # the log still holds steps 6..8
    assert train_main(["--resume", "--out", str(out)]) == 0
    steps = [r["step"] for r in read_metrics(log) if r.get("event") == "train"]
    assert steps == list(range(1, 21))


def test_a_full_disk_while_logging_is_one_line(small_disk: Path) -> None:
    # A full tmpfs, not a link to /dev/full: the log is never written through a link (issue 27).
    path = small_disk / "m.metrics.jsonl"
    log = MetricsLog(path, fresh=True)
    _fill(small_disk, leave=0)
    with pytest.raises(CheckpointError, match=r"could not write .*: disk full; the last saved checkpoint"):
        log.append({"event": "train", "step": 1})


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MB tmpfs: a folder whose disk can really fill up."""
    mount = tmp_path / "disk"
    mount.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(folder: Path, leave: int) -> None:
    """Fill the disk holding `folder` until `leave` bytes (about) are free."""
    free = os.statvfs(folder).f_bavail * os.statvfs(folder).f_frsize
    with open(folder / "filler", "wb") as f:
        try:
            f.write(b"\0" * max(0, free - leave))
            f.flush()
        except OSError:
            pass


@pytest.mark.slow
@pytest.mark.parametrize("leave", [0, 40_000, 150_000])
def test_resume_on_a_full_disk_is_one_line_and_keeps_the_checkpoint(
        small_disk: Path, tiny_corpus_file: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch, leave: int) -> None:
    out = small_disk / "m.pt"
    monkeypatch.setenv("TEXTGEN_STEP_LIMIT", "3")
    assert train_main(["--corpus", str(tiny_corpus_file), "--out", str(out), *NANO, "--max-iters", "20"]) == 0
    capsys.readouterr()
    saved = out.read_bytes()
    _fill(small_disk, leave)
    assert train_main(["--resume", "--out", str(out)]) == 1
    err = _one_line_error(capsys)
    assert "disk full" in err, err
    assert out.read_bytes() == saved
    assert not [p for p in small_disk.iterdir() if p.name.endswith(".tmp")]
