"""The serving benchmark runs end to end at a tiny shape and reports every level against the
batch-1 decode; it asserts no speeds."""

from __future__ import annotations

from pathlib import Path

from benchmarks import serving
from textgen_core.models.gpt import GPTConfig


def test_serving_bench_reports_each_level_against_batch_1(tmp_path: Path) -> None:
    tiny = GPTConfig(vocab_size=65, block_size=32, n_layer=1, n_head=2, n_embd=16)
    rows, info = serving.run(tmp_path, config=tiny, new_tokens=6, streams=(1, 2))
    assert [r.name for r in rows] == ["batch-1 decode", "1 streams", "2 streams"]
    assert all(r.value > 0 and r.unit == "tok/s" for r in rows)
    assert rows[2].reference == "batch-1 decode" and "one stream" in rows[2].note
    assert len(info["streams_2"]["ttft_s"]) == 2
