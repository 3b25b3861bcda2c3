"""`python -m benchmarks.gpu_check`: the CPU dry run goes through every part, so the GPU script
cannot rot between lent accelerators; a part that overruns its budget or fails is recorded and
the run goes on. No speeds are asserted."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from benchmarks import gpu_check


@pytest.mark.slow
def test_dry_run_records_every_part(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEXTGEN_STEP_LIMIT", "3")  # as the README commands run: the check ignores it
    path = tmp_path / "check.json"
    assert gpu_check.main(["--dry-run", "--json", str(path)]) == 0
    record = json.loads(path.read_text())
    parts = record["parts"]
    assert record["dry_run"] and record["device"] == "cpu" and record["total_seconds"] > 0
    assert set(parts) == set(gpu_check.PARTS)
    for family in gpu_check.FAMILIES:
        train = parts["train"][family]
        assert train["status"] == "ok", (family, train)
        assert train["loss_falls"] and train["resume"]["steps"] == train["steps"] + 2
        assert parts["export"][family]["status"] == "ok", (family, parts["export"][family])
        assert Path(parts["export"][family]["file"]).suffix == ".onnx"
    assert parts["train"]["gan"]["adversarial_finite"]
    step = parts["step"]
    assert step["status"] == "ok" and step["ours_tok_s"] > 0 and step["ratio"] > 0
    assert step["mfu_percent"] is None and step["mfu_note"].startswith("skipped")  # no peak for a CPU
    fast = parts["time_to_loss"]
    assert fast["status"].startswith("not reached")  # 10 nano steps on a tiny corpus
    assert fast["hit_seconds"] is None and fast["compile_s"] >= 0 and fast["steps"] == 10


def test_a_failing_part_is_one_line_and_the_run_goes_on() -> None:
    def broken(budget: gpu_check.TimeBudget) -> dict:
        raise RuntimeError("CUDA error: an illegal memory access\nwas encountered")

    record = gpu_check.run_part(60, broken)
    assert record["status"] == "failed: RuntimeError: CUDA error: an illegal memory access was encountered"


def test_a_part_past_its_budget_is_not_reached() -> None:
    record = gpu_check.run_part(0.2, lambda budget: time.sleep(30) or {"status": "ok"})
    assert record["status"].startswith("not reached: time budget 0 s spent")


@pytest.mark.slow
def test_the_budget_stops_training_at_a_step_boundary(tmp_path: Path) -> None:
    """The first SIGINT is the trainer's Ctrl-C: it stops at the next step and saves."""
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(gpu_check.dry_run_text(), encoding="utf-8")
    plan = replace(gpu_check.DRY_PLAN, train_steps={"gpt": 1_000_000})
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        record = gpu_check.run_part(
            3, lambda budget: gpu_check.train_family(plan, "gpt", str(corpus), tmp_path, budget))
    finally:
        torch.set_num_threads(threads)
    assert record["status"].startswith("not reached"), record
    assert "resume" not in record


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA machine runs the real check")
def test_without_cuda_every_part_says_why_it_was_skipped(tmp_path: Path) -> None:
    path = tmp_path / "check.json"
    assert gpu_check.main(["--json", str(path)]) == 0
    parts = json.loads(path.read_text())["parts"]
    assert {p["status"] for p in parts.values()} == {"skipped: PyTorch sees no CUDA device (use --dry-run)"}
