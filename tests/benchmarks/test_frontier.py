"""benchmarks/frontier.py in its --quick mode on a tiny corpus, as `python -m benchmarks --only
frontier --quick` runs it: every recipe trained for every budget through the real command and
scored on the whole validation split, a table and a plot written beside the results. No timing
is asserted (speed is measured by `nox -s bench`, never by a unit test)."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import pytest

from benchmarks import __main__ as bench_main
from benchmarks import frontier, report

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_quick_frontier_trains_scores_and_draws(tiny_corpus_file: Path, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(report, "RESULTS_DIR", tmp_path)
    assert bench_main.main(["--only", "frontier", "--quick", "--corpus", str(tiny_corpus_file),
                            "--budgets", "0.03"]) == 0
    assert "nanoGPT, A100" in capsys.readouterr().out
    (saved,) = tmp_path.glob("bench-*.json")
    info = json.loads(saved.read_text())["frontier"]
    points = info["points"]
    assert [p["recipe"] for p in points] == [r.name for r in frontier.QUICK_RECIPES]
    for point in points:
        assert point["budget_s"] == pytest.approx(1.8) and point["steps"] > 0
        assert math.isfinite(point["bits_per_char"]) and 0 < point["bits_per_char"] < 8
        assert point["val_tokens"] > 0
    assert {p["tokenizer"].split()[0] for p in points} == {"char", "bpe"}
    assert Path(info["plot"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = Path(info["table"]).read_text()
    assert all(r.name in table for r in frontier.QUICK_RECIPES) and "2.120" in table


def test_references_are_nanogpts_figures_in_bits() -> None:
    assert f"{frontier.NANOGPT_A100_BITS:.3f}" == "2.120" and f"{frontier.NANOGPT_CPU_BITS:.2f}" == "2.71"


def test_budgets_flag_reads_a_comma_list() -> None:
    assert bench_main._budgets("2,5,10") == (2.0, 5.0, 10.0)
    for bad in ("", "x", "0", "-1,2"):
        with pytest.raises(argparse.ArgumentTypeError, match=r"budget|comma list"):
            bench_main._budgets(bad)


def test_the_frontier_runs_only_when_named() -> None:
    """Hours long: `python -m benchmarks` (nox -s bench) leaves it out."""
    (bench,) = [b for b in bench_main.BENCHMARKS if b.name == "frontier"]
    assert bench.on_request and not any(b.on_request for b in bench_main.BENCHMARKS if b is not bench)
