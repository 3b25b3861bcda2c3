"""`python -m textgen_core.evaluate` on a GAN, and on a GPT with --generation-metrics."""

import math
from pathlib import Path

import pytest
import torch

from runtime.tokenizer import CharTokenizer
from textgen_core.evaluate import main
from textgen_core.metrics.judge import judge_nll
from textgen_core.models.gpt import gpt_from_checkpoint
from textgen_core.training.checkpoint import load_checkpoint


def _table_row(out: str, name: str) -> list[float]:
    line = next(line for line in out.splitlines() if line.startswith(f"| {name} |"))
    cells = [c.strip() for c in line.strip("|").split("|")][1:8]
    return [math.nan if c == "-" else float(c) for c in cells]


def test_gan_report_has_model_baseline_and_real_rows(tiny_gan_checkpoint: Path, sentence_corpus_file: Path,
                                                     tiny_gpt_checkpoint: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    code = main([str(tiny_gan_checkpoint), "--corpus", str(sentence_corpus_file), "--num-samples", "10",
                 "--judge", str(tiny_gpt_checkpoint), "--device", "cpu"])
    out = capsys.readouterr().out
    assert code == 0, out
    gan, unigram, real = (_table_row(out, n) for n in ("GAN", "unigram baseline", "held-out real"))
    for row in (gan, unigram, real):
        assert all(0 <= v <= 1 for v in row[:6])
    assert real[1] > unigram[1]  # real sentences share far more trigrams with held-out text
    assert math.isfinite(real[6])  # the judge scored them


def test_gpt_generation_metrics_at_two_temperatures(tiny_gpt_checkpoint: Path, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    corpus = tmp_path / "c.txt"  # sentences the tiny GPT (trained on Hamlet's lines) can write
    corpus.write_text("To be, or not to be. To die: to sleep.\n\nAnd by opposing end them.\n" * 30)
    code = main([str(tiny_gpt_checkpoint), "--corpus", str(corpus), "--generation-metrics",
                 "--num-samples", "6", "--temperatures", "0.5,1", "--device", "cpu"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "| GPT T=0.5 |" in out and "| GPT T=1 |" in out and "| unigram baseline |" in out


def test_judge_prefers_corpus_text(tiny_gpt_checkpoint: Path) -> None:
    model, chars = gpt_from_checkpoint(load_checkpoint(tiny_gpt_checkpoint))
    assert isinstance(chars, CharTokenizer)
    torch.manual_seed(0)
    good, n = judge_nll(model, chars, ["To be, or not to be, that is the question:"])
    bad, _ = judge_nll(model, chars, ["eTo ,b oe ratn ot ob, tt ahis th quesoetni:"])
    assert n == 1 and good < bad


@pytest.mark.parametrize(("args", "message"), [
    (["--judge", "{gan}"], "holds a 'gan' model, but this command needs a 'gpt' model"),
    (["--temperatures", "0,x"], "--temperatures must be"),
    (["--num-samples", "1"], "--num-samples must be at least 2"),
])
def test_bad_input(tiny_gan_checkpoint: Path, sentence_corpus_file: Path, capsys: pytest.CaptureFixture[str],
                   args: list[str], message: str) -> None:
    args = [a.replace("{gan}", str(tiny_gan_checkpoint)) for a in args]
    target = str(tiny_gan_checkpoint)
    code = main([target, "--corpus", str(sentence_corpus_file), *args])
    err = capsys.readouterr().err
    assert code == 1 and message in " ".join(err.split()), err
