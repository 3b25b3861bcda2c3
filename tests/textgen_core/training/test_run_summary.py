"""The start-of-run summary (training/run_summary.py) against what the run then did, and the
re-check of a cached dtype choice whose measurement is far from the run's steps."""

import json
from pathlib import Path

import pytest

from textgen_core.models.gpt import GPTConfig, gpt_from_checkpoint
from textgen_core.train import main as train_main
from textgen_core.training import dtype_choice
from textgen_core.training.checkpoint import load_checkpoint
from textgen_core.training.metrics_log import read_metrics


@pytest.fixture
def own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TEXTGEN_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / dtype_choice.CACHE_NAME


def run(corpus: Path, out: Path, *flags: str) -> list[dict]:
    assert train_main(["--corpus", str(corpus), "--out", str(out), "--preset", "nano", "--max-iters", "4",
                       "--sample-tokens", "0", "--block-size", "16", *flags]) == 0
    return read_metrics(out.with_suffix(".metrics.jsonl"))


def test_the_summary_states_the_runs_own_figures(own_cache: Path, tiny_corpus_file: Path, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "m.pt"
    events = run(tiny_corpus_file, out)
    printed = " ".join(capsys.readouterr().out.split())
    assert "measuring fp32 against bf16" in printed and "textgen train" in printed
    start = events[0]
    assert start["event"] == "start" and start["amp"] in (None, "torch.bfloat16")  # JSON null, not "None"
    summary = start["summary"]
    payload = load_checkpoint(out, kind="gpt")
    model, tokenizer = gpt_from_checkpoint(payload)
    text = tiny_corpus_file.read_text(encoding="utf-8")
    assert summary["params"] == sum(p.numel() for p in model.parameters())
    assert f"{summary['params']:,} parameters" in printed
    assert summary["characters"] == len(text)
    assert summary["tokens"] == len(tokenizer.encode(text)) == summary["train_tokens"] + summary["val_tokens"]
    assert summary["tokenizer"] == f"char, {tokenizer.vocab_size} tokens"
    assert summary["block_size"] == payload["model_config"]["block_size"] == 16
    assert summary["batch_size"] == payload["train_config"]["batch_size"]
    assert summary["dtype"] == payload["train_state"]["compute_dtype"]
    assert summary["dtype_reason"] == "measured" and set(summary["dtype_timings"]) == {"fp32", "bf16"}
    assert summary["device"] == "cpu" and summary["compile"] is False
    assert summary["steps"] == f"0 -> {payload['train_state']['step']}"
    assert all(Path(f).exists() for f in summary["files"])
    assert str(out) in summary["files"]


def test_a_cached_choice_far_from_the_runs_steps_is_measured_again(
        own_cache: Path, tiny_corpus_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "m.pt"
    run(tiny_corpus_file, out)
    payload = load_checkpoint(out, kind="gpt")
    key = dtype_choice._cache_key(GPTConfig(**payload["model_config"]), payload["train_config"]["batch_size"])
    cache = json.loads(own_cache.read_text())
    # As if measured under a heavy load: a step took a minute.
    cache[key] = {"choice": "bf16", "fp32_ms_per_step": 90_000.0, "bf16_ms_per_step": 60_000.0}
    own_cache.write_text(json.dumps(cache))
    capsys.readouterr()
    events = run(tiny_corpus_file, out, "--overwrite")
    printed = " ".join(capsys.readouterr().out.split())
    summary = events[0]["summary"]
    assert summary["dtype"] == "bf16" and summary["dtype_reason"] == "cached"
    assert "measured on an earlier run of this shape" in printed
    (recheck,) = [e for e in events if e["event"] == "dtype_recheck"]
    assert recheck["step"] == dtype_choice.RECHECK_AFTER and recheck["kept"] == "bf16"
    assert recheck["step_ms"] * dtype_choice.RECHECK_FACTOR < 60_000
    assert "measuring fp32 against bf16 again" in printed
    entry = json.loads(own_cache.read_text())[key]
    assert entry["bf16_ms_per_step"] < 60_000 and entry["choice"] == recheck["next"]
    assert load_checkpoint(out, kind="gpt")["train_state"]["compute_dtype"] == "bf16"  # kept for the run


def test_a_choice_near_its_measurement_is_not_measured_again() -> None:
    cached = dtype_choice.DtypeDecision("fp32", "cached", {"fp32": 10.0, "bf16": 20.0})
    assert not dtype_choice.far_from_measured(12.0, cached)
    assert dtype_choice.far_from_measured(40.0, cached) and dtype_choice.far_from_measured(2.0, cached)
    assert not dtype_choice.far_from_measured(400.0, dtype_choice.DtypeDecision("fp32", "given"))


def test_the_gan_summary_counts_sentences(own_cache: Path, sentence_corpus_file: Path, tmp_path: Path,
                                          tiny_gan_flags: list[str]) -> None:
    from textgen_core.models.gan import gan_from_checkpoint

    out = tmp_path / "gan.pt"
    assert train_main(["--model", "gan", *tiny_gan_flags, "--corpus", str(sentence_corpus_file), "--out", str(out),
                       "--max-iters", "2", "--mle-iters", "1"]) == 0
    start = read_metrics(out.with_suffix(".metrics.jsonl"))[0]
    summary = start["summary"]
    gan, tokenizer = gan_from_checkpoint(load_checkpoint(out, kind="gan"))
    assert summary["params"] == sum(p.numel() for p in gan.parameters())
    assert (summary["train_tokens"], summary["val_tokens"]) == (start["train_sentences"], start["val_sentences"])
    assert summary["unit"] == "sentences" and summary["characters"] is None
    assert summary["tokenizer"] == f"word, {tokenizer.vocab_size:,} words"
    assert summary["block_size"] == gan.config.seq_len
