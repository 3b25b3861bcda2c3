"""`--dtype auto` on a CPU: fp32 against bf16 measured once per machine and shape, cached,
recorded in the checkpoint, and kept by --resume."""

import json
from pathlib import Path

import pytest
import torch

from textgen_core.errors import CheckpointError
from textgen_core.models.gpt import GPTConfig
from textgen_core.train import main as train_main
from textgen_core.training import dtype_choice
from textgen_core.training.checkpoint import load_checkpoint

CPU = torch.device("cpu")
TINY = GPTConfig(vocab_size=20, block_size=8, n_layer=1, n_head=2, n_embd=16)


@pytest.fixture
def own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TEXTGEN_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / dtype_choice.CACHE_NAME


def fake_timings(monkeypatch: pytest.MonkeyPatch, fp32: float, bf16: float) -> list[int]:
    calls: list[int] = []

    def measured(config: GPTConfig, batch_size: int) -> dict[str, float]:
        calls.append(batch_size)
        return {"fp32": fp32, "bf16": bf16}

    monkeypatch.setattr(dtype_choice, "_measure", measured)
    return calls


def test_the_faster_dtype_is_chosen_once_and_cached(own_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = fake_timings(monkeypatch, fp32=0.2, bf16=0.1)
    assert dtype_choice.choose(CPU, TINY, 4) == "bf16"
    assert dtype_choice.choose(CPU, TINY, 4) == "bf16"
    assert calls == [4]  # the second run read the cache
    entry = next(iter(json.loads(own_cache.read_text()).values()))
    assert entry == {"choice": "bf16", "fp32_ms_per_step": 200.0, "bf16_ms_per_step": 100.0}
    fake_timings(monkeypatch, fp32=0.1, bf16=0.2)
    assert dtype_choice.choose(CPU, TINY, 8) == "fp32"  # another shape is measured on its own


def test_saved_and_requested_dtypes_need_no_measurement(own_cache: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    calls = fake_timings(monkeypatch, fp32=0.2, bf16=0.1)
    assert dtype_choice.choose(CPU, TINY, 4, saved="fp32") == "fp32"
    assert dtype_choice.choose(CPU, TINY, 4, requested="fp32") == "fp32"
    assert dtype_choice.choose(CPU, TINY, 4, requested="bf16", saved="fp32") == "bf16"
    assert calls == []
    with pytest.raises(CheckpointError, match="compute_dtype"):
        dtype_choice.choose(CPU, TINY, 4, saved={"a": 1})


def test_a_dtype_saved_on_another_kind_of_device_is_chosen_again(
        own_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = fake_timings(monkeypatch, fp32=0.1, bf16=0.2)
    assert dtype_choice.choose(CPU, TINY, 4, saved="bf16", saved_device="cpu") == "bf16"
    assert dtype_choice.choose(CPU, TINY, 4, saved="bf16") == "bf16"  # an older checkpoint
    assert calls == []
    assert dtype_choice.choose(CPU, TINY, 4, saved="fp16", saved_device="cuda") == "fp32"
    assert calls == [4]
    with pytest.raises(CheckpointError, match="compute_device"):
        dtype_choice.choose(CPU, TINY, 4, saved="fp32", saved_device=["cpu"])


def test_what_a_second_rank_asks_never_measures(own_cache: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    # A distributed run's rank 1 asks this and waits for rank 0's measurement (training/gpt.py).
    calls = fake_timings(monkeypatch, fp32=0.2, bf16=0.1)
    assert dtype_choice.decided_without_measuring(CPU, TINY, 4) is None
    assert dtype_choice.decided_without_measuring(CPU, TINY, 4, requested="fp32") == "fp32"
    assert calls == [] and not own_cache.exists()
    assert dtype_choice.measured_choice(TINY, 4) == "bf16"  # rank 0
    assert dtype_choice.decided_without_measuring(CPU, TINY, 4) == "bf16"  # now cached
    assert calls == [4]


@pytest.mark.parametrize("content", [b"\xff\xfe not json", b"[1, 2]", b'{"k": 3}'])
def test_a_damaged_cache_is_measured_again(own_cache: Path, monkeypatch: pytest.MonkeyPatch,
                                           content: bytes) -> None:
    own_cache.parent.mkdir(parents=True)
    own_cache.write_bytes(content)
    calls = fake_timings(monkeypatch, fp32=0.1, bf16=0.3)
    assert dtype_choice.choose(CPU, TINY, 4) == "fp32"
    assert calls == [4]
    assert "fp32" in own_cache.read_text()


def test_the_real_measurement_times_both_and_leaves_the_random_streams(own_cache: Path) -> None:
    before = torch.get_rng_state()
    timings = dtype_choice.measure(TINY, 2)
    assert set(timings) == {"fp32", "bf16"} and all(t > 0 for t in timings.values())
    assert torch.equal(torch.get_rng_state(), before)


def test_resume_computes_as_the_checkpoint_says(own_cache: Path, tiny_corpus_file: Path,
                                                tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_timings(monkeypatch, fp32=0.3, bf16=0.1)
    out = tmp_path / "m.pt"
    args = ["--corpus", str(tiny_corpus_file), "--out", str(out), "--preset", "nano",
            "--max-iters", "4", "--eval-interval", "2", "--checkpoint-interval", "2",
            "--sample-tokens", "0", "--block-size", "16"]
    assert train_main(args) == 0
    assert load_checkpoint(out, kind="gpt")["train_state"]["compute_dtype"] == "bf16"
    assert load_checkpoint(out, kind="gpt")["train_state"]["compute_device"] == "cpu"
    fake_timings(monkeypatch, fp32=0.1, bf16=0.3)  # the machine now measures the other way
    own_cache.unlink()
    assert train_main(["--corpus", str(tiny_corpus_file), "--out", str(out), "--resume",
                       "--max-iters", "6"]) == 0
    assert load_checkpoint(out, kind="gpt")["train_state"]["compute_dtype"] == "bf16"
    assert not own_cache.exists()  # nothing was measured


def test_dtype_flag_is_checked(tiny_corpus_file: Path, tmp_path: Path,
                               capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        train_main(["--corpus", str(tiny_corpus_file), "--out", str(tmp_path / "m.pt"),
                    "--preset", "nano", "--dtype", "fp8"])
    assert "--dtype" in capsys.readouterr().err
