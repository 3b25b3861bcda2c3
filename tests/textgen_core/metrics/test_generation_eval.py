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
    cells = [c.strip() for c in line.strip("|").split("|")][1:9]
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
    # Reverse NLL: the held-out references under a bigram model of each row's sentences.
    assert all(math.isfinite(row[7]) for row in (gan, unigram, real)) and real[7] < unigram[7]


def test_gpt_generation_metrics_at_two_temperatures(tiny_gpt_checkpoint: Path, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    corpus = tmp_path / "c.txt"  # sentences the tiny GPT (trained on Hamlet's lines) can write
    corpus.write_text("To be, or not to be. To die: to sleep.\n\nAnd by opposing end them.\n" * 30)
    code = main([str(tiny_gpt_checkpoint), "--corpus", str(corpus), "--generation-metrics",
                 "--num-samples", "6", "--temperatures", "0.5,1", "--device", "cpu",
                 "--curve-out", str(tmp_path / "gpt.curve")])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "| GPT T=0.5 |" in out and "| GPT T=1 |" in out and "| unigram baseline |" in out
    assert (tmp_path / "gpt.curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_gan_curve_over_temperatures(tiny_gan_checkpoint: Path, sentence_corpus_file: Path, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    """The sweep of issue 31: a row per temperature, the held-out NLL, the table and the plot."""
    prefix = tmp_path / "curves" / "gan"
    prefix.parent.mkdir()
    code = main([str(tiny_gan_checkpoint), "--corpus", str(sentence_corpus_file), "--num-samples", "12",
                 "--temperatures", "0.5,1,1.5", "--curve-out", str(prefix), "--device", "cpu"])
    out = capsys.readouterr().out
    assert code == 0, out
    rows = {t: _table_row(out, f"GAN T={t}") for t in ("0.5", "1", "1.5")}
    assert all(0 <= v <= 1 for row in rows.values() for v in row[:6])
    nll = float(out.split("nats/word")[1].split("GAN ")[1].split()[0])
    assert 0 < nll < math.log(40) + 1  # the tiny GAN's vocabulary has 40 words
    table = (tmp_path / "curves" / "gan.md").read_text(encoding="utf-8")
    assert "| GAN T=1.5 |" in table and "| held-out real |" in table
    assert (tmp_path / "curves" / "gan.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"wrote {prefix}.md and {prefix}.png" in " ".join(out.split())


def test_gan_at_temperature_one_is_the_single_row(tiny_gan_checkpoint: Path, sentence_corpus_file: Path,
                                                  tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Without --temperatures a GAN is one row at temperature 1, as before; the sweep's T=1 row
    draws the same sentences."""
    args = [str(tiny_gan_checkpoint), "--corpus", str(sentence_corpus_file), "--num-samples", "8",
            "--device", "cpu"]
    assert main(args) == 0
    single = _table_row(capsys.readouterr().out, "GAN")
    assert main([*args, "--temperatures", "1", "--curve-out", str(tmp_path / "c")]) == 0
    assert _table_row(capsys.readouterr().out, "GAN T=1") == single


def test_compare_puts_several_checkpoints_in_one_table(tiny_gan_checkpoint: Path, sentence_corpus_file: Path,
                                                       tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    other = tmp_path / "other.pt"
    other.write_bytes(tiny_gan_checkpoint.read_bytes())
    code = main([str(tiny_gan_checkpoint), "--corpus", str(sentence_corpus_file), "--num-samples", "8",
                 "--temperatures", "0.7,1.3", "--compare", str(other), "--curve-out", str(tmp_path / "both"),
                 "--device", "cpu"])
    out = capsys.readouterr().out
    assert code == 0, out
    name = tiny_gan_checkpoint.name
    assert _table_row(out, f"GAN {name} T=0.7") == _table_row(out, "GAN other.pt T=0.7")  # the same model
    assert (tmp_path / "both.png").exists() and (tmp_path / "both.md").exists()


def test_a_gan_and_a_gpt_on_one_plot(tiny_gan_checkpoint: Path, tiny_gpt_checkpoint: Path,
                                     sentence_corpus_file: Path, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    """The GPT is measured with the GAN's vocabulary and sentence length, against the same
    references; the tiny char GPT may write no sentence that short, which the header says."""
    code = main([str(tiny_gan_checkpoint), "--corpus", str(sentence_corpus_file), "--num-samples", "4",
                 "--temperatures", "1", "--compare", str(tiny_gpt_checkpoint),
                 "--curve-out", str(tmp_path / "mixed"), "--device", "cpu"])
    out = capsys.readouterr().out
    assert code == 0, out
    gpt = f"GPT {tiny_gpt_checkpoint.name} T=1"
    assert f"| GAN {tiny_gan_checkpoint.name} T=1 |" in out
    assert f"| {gpt} |" in out or f"words from {gpt}" in " ".join(out.split())
    assert (tmp_path / "mixed.png").exists()


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
    (["--compare", "{corpus}"], "is a text file: train on it with"),
])
def test_bad_input(tiny_gan_checkpoint: Path, sentence_corpus_file: Path, capsys: pytest.CaptureFixture[str],
                   args: list[str], message: str) -> None:
    args = [a.replace("{gan}", str(tiny_gan_checkpoint)).replace("{corpus}", str(sentence_corpus_file))
            for a in args]
    target = str(tiny_gan_checkpoint)
    code = main([target, "--corpus", str(sentence_corpus_file), *args])
    err = capsys.readouterr().err
    assert code == 1 and message in " ".join(err.split()), err


@pytest.mark.parametrize("kind", ["word", "bpe"])
def test_the_curve_takes_a_gpt_of_any_tokenizer(kind: str, sentence_corpus_file: Path,
                                                tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 31's word-level GPT row: a word (or bpe) GPT samples from the start of a line in its
    own vocabulary (the curve once assumed a char vocabulary and failed with a traceback)."""
    pytest.importorskip("tokenizers")
    from textgen_core.train import main as train

    checkpoint = tmp_path / f"{kind}.pt"
    vocabulary = ["--vocab-size", "40"] if kind == "word" else ["--vocab-size", "300"]
    assert train(["--corpus", str(sentence_corpus_file), "--out", str(checkpoint),
                  "--tokenizer", kind, *vocabulary, "--device", "cpu", "--dtype", "fp32",
                  "--sample-tokens", "0", "--max-iters", "30", "--eval-interval", "30",
                  "--eval-iters", "1", "--batch-size", "8", "--block-size", "32",
                  "--n-layer", "1", "--n-embd", "16", "--n-head", "2"]) == 0
    capsys.readouterr()
    code = main([str(checkpoint), "--corpus", str(sentence_corpus_file), "--generation-metrics",
                 "--num-samples", "8", "--temperatures", "1", "--device", "cpu",
                 "--curve-out", str(tmp_path / f"{kind}.curve")])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "| GPT T=1 |" in out and "| unigram baseline |" in out
