"""The benchmark harness runs and records; it asserts no speeds (speed is measured by
`nox -s bench`, never by a timed unit test)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from benchmarks import __main__ as bench_main
from benchmarks import memory_bandwidth, report, sampling_speed, training_speed
from benchmarks.nanogpt_reference import ReferenceGPT
from textgen_core.models.gpt import GPT, GPTConfig


def test_ratios_compare_rows_of_the_same_group() -> None:
    rows = report.with_ratios([
        report.Row("g", "ref", 50.0, "tok/s"),
        report.Row("g", "ours", 75.0, "tok/s", reference="ref"),
        report.Row("h", "ours", 10.0, "tok/s", reference="ref"),  # no 'ref' in group h
    ])
    assert rows[0].ratio is None and rows[1].ratio == pytest.approx(1.5) and rows[2].ratio is None


def test_results_go_to_a_run_file_and_the_history(tmp_path: Path) -> None:
    for value in (1.0, 2.0):
        path = report.save_json([report.Row("g", "x", value, "s")], {"note": "test"}, results_dir=tmp_path)
        assert json.loads(path.read_text())["rows"][0]["value"] == value
    history = [json.loads(line) for line in (tmp_path / "history.jsonl").read_text().splitlines()]
    assert [h["rows"][0]["value"] for h in history] == [1.0, 2.0]


def test_machine_info_names_the_cpu() -> None:
    info = report.machine_info()
    assert info["cpu_model"] and info["cpu_cores"] >= 1


def test_memory_bandwidth_reports_every_method() -> None:
    rates = memory_bandwidth.measure(size_mib=4, repeats=1)
    assert {"copy-1t", "read-1t", "best"} <= set(rates)
    assert rates["best"] == max(v for k, v in rates.items() if k != "best") > 0


def test_bound_rounds_pair_each_speed_with_the_bandwidth_of_its_round() -> None:
    """A busy round slows both sides; its ratio uses its own bandwidth, the rows the best of each."""

    class Probe:
        rates = iter([40.0, 20.0])

        def sample(self) -> dict[str, float]:
            rate = next(self.rates)
            return {"read-1t": rate, "best": rate}

    speeds = iter([500.0, 300.0])
    best, bandwidth, ratios = sampling_speed.against_bound(
        {"ours": lambda: next(speeds)}, rounds=2, weight_bytes=40_000_000, probe=Probe())
    assert best == {"ours": 500.0} and bandwidth == {"read-1t": 40.0, "best": 40.0}
    assert ratios["ours"] == pytest.approx([500 / 1000, 300 / 500])


def test_bandwidth_probe_samples_every_method_once() -> None:
    rates = memory_bandwidth.BandwidthProbe(size_mib=4).sample()
    assert len(rates) == 5 and rates["best"] == max(rates.values()) > 0


def test_reference_model_has_our_shape() -> None:
    """nanoGPT's model is ours with learned positions; rotary drops the position table."""
    config = GPTConfig(vocab_size=84, block_size=32, n_layer=2, n_head=2, n_embd=32, positions="learned")
    reference = sum(p.numel() for p in ReferenceGPT(84, 32, 2, 2, 32).parameters())
    assert reference == sum(p.numel() for p in GPT(config).parameters())
    rotary = GPTConfig(**{**config.to_dict(), "positions": "rotary"})
    assert reference - 32 * 32 == sum(p.numel() for p in GPT(rotary).parameters())


def test_training_benchmark_runs_both_loops() -> None:
    model_cfg, train_cfg = training_speed.preset_configs("nano")
    device = torch.device("cpu")
    ours, _ = training_speed.our_step(model_cfg, train_cfg, device)
    speeds = training_speed.tokens_per_s(
        {"reference": training_speed.reference_loop(model_cfg, train_cfg, device), "ours": ours},
        model_cfg, train_cfg.batch_size, device, rounds=2, block=2, warmup=1)
    assert set(speeds) == {"reference", "ours"} and min(speeds.values()) > 0


def test_gpu_set_is_skipped_without_cuda(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(report, "RESULTS_DIR", tmp_path)
    assert bench_main.main(["--only", "gpu-training", "--only", "gpu-time-to-loss"]) == 0
    out = capsys.readouterr().out
    assert "skipped gpu-training: no CUDA device" in out and "skipped gpu-time-to-loss" in out
    assert len(list(tmp_path.glob("bench-*.json"))) == 1


def test_benchmark_names_are_unique() -> None:
    names = [b.name for b in bench_main.BENCHMARKS]
    assert len(names) == len(set(names))
    assert {b.name for b in bench_main.BENCHMARKS if b.needs_cuda} == {"gpu-training", "gpu-time-to-loss"}


def test_gpu_training_benchmark_code_runs_on_cpu() -> None:
    """The CUDA benchmark's own code (not its speed) with a tiny preset on CPU, where no peak is
    known so no MFU row appears."""
    from benchmarks import gpu_training

    rows = report.with_ratios(gpu_training.run("nano", rounds=1, block=1, device="cpu"))
    assert [r.name for r in rows] == ["nanoGPT-equivalent (compile, bf16)", "textgen step (--preset nano)"]
    assert rows[1].ratio is not None and rows[1].ratio > 0


def test_time_to_loss_benchmark_reads_the_real_trainer(tiny_corpus_file: Path) -> None:
    from benchmarks import gpu_time_to_loss

    rows = gpu_time_to_loss.run("nano", device="cpu", corpus=str(tiny_corpus_file), max_iters=20)
    names = [r.name for r in rows]
    assert names[0].startswith("target") and names[-1] == "compile time (first step)"
    assert "val 1.3 not reached" in names[1] and rows[1].value > 0  # a 20-step nano run cannot
