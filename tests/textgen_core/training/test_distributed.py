"""`torchrun --nproc_per_node=2` trains with DDP on CPU (gloo) like one process with the same
global batch, and only rank 0 writes."""

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from textgen_core.training.checkpoint import load_checkpoint
from textgen_core.training.metrics_log import read_metrics

pytestmark = pytest.mark.slow

COMMON = ["--preset", "nano", "--device", "cpu", "--sample-tokens", "0", "--max-iters", "80",
          "--eval-interval", "80", "--eval-iters", "10", "--learning-rate", "0.01", "--min-lr", "0.001"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def final_val_loss(out: Path) -> float:
    return [r for r in read_metrics(out.with_suffix(".metrics.jsonl")) if r["event"] == "eval"][-1]["val_loss"]


def test_two_processes_match_one_with_the_same_global_batch(tiny_corpus_file: Path, tmp_path: Path) -> None:
    single, ddp = tmp_path / "single" / "gpt.pt", tmp_path / "ddp" / "gpt.pt"
    subprocess.run([sys.executable, "-m", "textgen_core.train", "--corpus", str(tiny_corpus_file),
                    "--out", str(single), "--batch-size", "16", *COMMON],
                   check=True, capture_output=True, timeout=300)
    for attempt in range(2):
        result = subprocess.run(
            [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
             "--master_addr=127.0.0.1", f"--master_port={free_port()}",
             "-m", "textgen_core.train", "--corpus", str(tiny_corpus_file), "--out", str(ddp),
             "--batch-size", "8", *COMMON, "--overwrite"],
            capture_output=True, text=True, timeout=300,
        )
        # About one run in sixteen, a worker aborted in gloo's C++ teardown at interpreter exit
        # ("terminate called without an active exception", SIGABRT) after training and saving
        # had finished; that run is repeated once. Any other failure fails at once.
        if result.returncode == 0 or "terminate called" not in result.stderr or attempt:
            break
    assert result.returncode == 0, result.stderr[:3000] + "\n...\n" + result.stderr[-1500:]
    assert result.stdout.count(f"saved {ddp}") == 1  # rank 0 alone reports and writes
    payload = load_checkpoint(ddp, kind="gpt")
    assert payload["train_state"]["step"] == 80 and payload["train_state"]["world_size"] == 2
    assert len(payload["train_state"]["rng"]["batch_by_rank"]) == 2
    assert sorted(p.name for p in ddp.parent.iterdir()) == ["gpt.loss.png", "gpt.metrics.jsonl", "gpt.pt"]
    assert final_val_loss(ddp) == pytest.approx(final_val_loss(single), abs=0.15)
