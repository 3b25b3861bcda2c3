"""The batched-sampling benchmark's code, at a tiny size: both rows and their ratio."""

from pathlib import Path

import pytest

from benchmarks import report
from benchmarks.batch_sampling import run
from textgen_core.models.gpt import GPTConfig


@pytest.mark.usefixtures("one_torch_thread")
def test_batch_benchmark_reports_the_time_ratio_of_batch_8_to_batch_1(tmp_path: Path) -> None:
    config = GPTConfig(vocab_size=20, block_size=8, n_layer=1, n_head=2, n_embd=16)
    rows, info = run(tmp_path, config=config, new_tokens=12, rounds=2)  # 12 > 8: the window rolls
    rows = report.with_ratios(rows)
    assert [r.name for r in rows] == ["batch 1", "batch 8"]
    assert rows[1].ratio == pytest.approx(rows[1].value / rows[0].value)
    assert len(info["round_ratios"]) == 2 and info["batch"] == 8
