"""`python -m textgen_core.evaluate CKPT --corpus X` for generated sentences: the GAN always, a GPT
with `--generation-metrics`.

Rows: the model's sentences (a GPT at each of `--temperatures`, a GAN at 1 or at each of them),
those of every `--compare` checkpoint, the unigram baseline of the same vocabulary, and held-out
real sentences (the ceiling); a GAN's teacher-forced held-out NLL under the table. With
`--temperatures` the table and the quality/diversity plot are also written (curve.py).
BLEU-2..4 against held-out sentences of the corpus, self-BLEU-2..4 within each row, the reverse
NLL (the held-out references under a bigram model of the row's sentences, reverse.py: a
collapsed generator scores badly), and with `--judge GPT.pt` the judge's NLL per character.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from runtime.file_kind import TAKES_CHECKPOINT, explained
from textgen_core.data.corpus import resolve_corpus
from textgen_core.data.sentences import load_sentences
from textgen_core.errors import ConfigError
from textgen_core.metrics.bleu import References
from textgen_core.metrics.curve import Series, write_curve
from textgen_core.metrics.judge import judge_nll
from textgen_core.metrics.report import Row, measure, render
from textgen_core.metrics.reverse import reverse_nll
from textgen_core.metrics.samplers import gan_sentences, gpt_sentences, unigram_sentences
from textgen_core.models.gan import GAN, draw_noise, gan_from_checkpoint
from textgen_core.models.gpt import gpt_from_checkpoint
from textgen_core.training.checkpoint import load_checkpoint
from textgen_core.training.device import resolve_device
from textgen_core.training.gan_losses import mle_loss, sentence_mask

DEFAULT_SEQ_LEN = 16
DEFAULT_VOCAB = 5000
DEFAULT_TEMPERATURES = "0.8,1.0"


def add_generation_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("generated sentences (a GAN checkpoint, or a GPT with "
                                      "--generation-metrics)")
    group.add_argument("--generation-metrics", action="store_true",
                       help="for a GPT: BLEU, self-BLEU and judge NLL of sampled sentences")
    group.add_argument("--judge", metavar="GPT_CKPT", help="score the sentences' NLL under this GPT")
    group.add_argument("--num-samples", type=int, default=500, help="sentences per row (default 500)")
    group.add_argument("--temperature", "--temperatures", dest="temperatures", action="append",
                       metavar="T[,T...]",
                       help="sampling temperatures: one, a comma list or the flag repeated, as in "
                            f"sample and chat (default {DEFAULT_TEMPERATURES} for a GPT, 1 for a "
                            "GAN); given, the sweep's table and quality/diversity plot are written "
                            "(--curve-out)")
    group.add_argument("--compare", metavar="CKPT", action="append", default=None,
                       help="another GAN or GPT checkpoint measured at the same temperatures against "
                            "the same references: one more line in the table and the plot; repeat "
                            "for more (default: none)")
    group.add_argument("--curve-out", metavar="PREFIX", default=None,
                       help="with --temperatures: write the table to PREFIX.md and the plot to "
                            "PREFIX.png (default: the checkpoint's path without .pt, plus .curve)")
    group.add_argument("--seq-len", type=int, default=None,
                       help=f"GPT rows: longest sentence + 1 (default {DEFAULT_SEQ_LEN}; a GAN uses its own)")
    group.add_argument("--vocab-size", type=int, default=None,
                       help=f"GPT rows: vocabulary (default {DEFAULT_VOCAB}; a GAN uses its own)")
    group.add_argument("--seed", type=int, default=0, help="seed of every sampled row")


def _temperatures(text: str) -> list[float]:
    try:
        values = [float(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise ConfigError(f"--temperatures must be comma-separated numbers, got {text!r}") from None
    if not values or any(not math.isfinite(t) or t <= 0 for t in values):
        raise ConfigError(f"--temperatures must be positive numbers, got {text!r}")
    return values


def generation_report(args: argparse.Namespace, payload: dict[str, Any]) -> str:
    """`payload`: the checkpoint at `args.checkpoint`, loaded once by the caller. With
    `--temperatures` the sweep's table and quality/diversity plot are also written (curve.py)."""
    if args.num_samples < 2:
        raise ConfigError(f"--num-samples must be at least 2, got {args.num_samples}")
    sweep = args.temperatures is not None
    text = DEFAULT_TEMPERATURES if args.temperatures is None else ",".join(args.temperatures)
    temperatures = _temperatures(text)
    device = resolve_device(args.device)
    models = [(args.checkpoint, payload)]
    for path in args.compare or []:
        with explained((path, TAKES_CHECKPOINT)):
            models.append((path, load_checkpoint(path)))
    for path, loaded in models:
        if loaded["kind"] not in ("gan", "gpt"):
            raise ConfigError(f"{path} holds a {loaded['kind']!r} model; generation metrics support "
                              "gan, gpt")
    judge: Callable[[list[str]], float] | None = None
    if args.judge:
        with explained((args.judge, TAKES_CHECKPOINT)):
            judge_model, judge_chars = gpt_from_checkpoint(load_checkpoint(args.judge, kind="gpt"))

        def judge(texts: list[str]) -> float:
            return judge_nll(judge_model, judge_chars, texts, device=device)[0]

    corpus = resolve_corpus(args.corpus, args.encoding, args.gutenberg_mirror)
    gans = {path: gan_from_checkpoint(loaded) for path, loaded in models if loaded["kind"] == "gan"}
    if gans:  # the first GAN's vocabulary and length measure every row, so all rows compare
        if args.seq_len is not None or args.vocab_size is not None:
            raise ConfigError("a GAN is measured with its own --seq-len and vocabulary; drop "
                              "--seq-len/--vocab-size")
        first, words = next(iter(gans.values()))
        seq_len = first.config.seq_len
        for path, (gan, _) in gans.items():
            if gan.config.seq_len != seq_len:
                raise ConfigError(f"{path} writes sentences of up to {gan.config.seq_len - 1} words, "
                                  f"the first GAN of {seq_len - 1}; compare GANs of one --seq-len")
            if sweep and gan.config.token_choice == "argmax":
                raise ConfigError(f"{path} picks every word by argmax and has no temperature to "
                                  "sweep; leave --temperatures out")
        data = load_sentences(corpus, seq_len, words.vocab_size, 1, tokenizer=words)
    else:
        seq_len = args.seq_len or DEFAULT_SEQ_LEN
        data = load_sentences(corpus, seq_len, args.vocab_size or DEFAULT_VOCAB, 1)
    held_out = data.val_words
    if len(held_out) < 4:
        raise ConfigError(f"corpus {args.corpus} has {len(held_out)} held-out sentence(s) of at most "
                          f"{seq_len - 1} words; BLEU needs at least 4")
    n = min(args.num_samples, len(held_out) // 2)  # the real row and the references never overlap
    references = References(held_out[: len(held_out) - n])

    def reverse(sentences: list[list[str]]) -> float:
        return reverse_nll(sentences, held_out[: len(held_out) - n], data.tokenizer.vocab_size)
    rows: list[Row] = []
    series: list[Series] = []
    silent: list[str] = []  # GPT rows without a single sentence of the measured length
    nll_notes: list[str] = []
    for path, loaded in models:
        label = "GAN" if loaded["kind"] == "gan" else "GPT"
        if len(models) > 1:
            label = f"{label} {Path(path).name}"
        line = Series(label)
        if loaded["kind"] == "gan":
            gan, own_words = gans[path]
            for t in temperatures if sweep else [1.0]:
                name = f"{label} T={t:g}" if sweep else label
                line.temperatures.append(t)
                sampled = gan_sentences(gan, own_words, n, args.seed, device=device, temperature=t)
                line.rows.append(measure(name, sampled, references, judge, reverse=reverse))
            nll_notes.append(f"{label} {held_out_nll(gan, data.val, args.seed, device):.3f}")
        else:
            model, chars = gpt_from_checkpoint(loaded)
            for t in temperatures:
                sampled = gpt_sentences(model, chars, data.tokenizer, n, t, seq_len, args.seed,
                                        device=device)
                if sampled:
                    line.temperatures.append(t)
                    line.rows.append(measure(f"{label} T={t:g}", sampled, references, judge,
                                             reverse=reverse))
                else:  # an undertrained model: the table says so instead of failing the whole report
                    silent.append(f"{label} T={t:g}")
        rows += line.rows
        series.append(line)
    if not rows:
        raise ConfigError(f"the GPT wrote no sentence of 1..{seq_len - 1} words at any temperature "
                          f"({text})")
    points = [measure("unigram baseline", unigram_sentences(data, n, args.seed), references, judge,
                      reverse=reverse),
              measure("held-out real", held_out[len(held_out) - n :], references, judge,
                      reverse=reverse)]
    rows += points
    names = ", ".join(path for path, _ in models)
    header = (f"{names} on {args.corpus}: {n} sentences per row, {len(held_out) - n} held-out "
              f"references, sentences of at most {seq_len - 1} words, vocabulary {data.tokenizer.vocab_size}"
              + (f", judge {args.judge} (nats/char)" if args.judge else "")
              + (f"; no sentence of 1..{seq_len - 1} words from {', '.join(silent)}" if silent else ""))
    if nll_notes:
        header += ("\nheld-out NLL of the generator (teacher-forced, nats/word; a GPT's is per "
                   f"character: evaluate without --generation-metrics): {', '.join(nll_notes)}")
    report = render(rows, header)
    if sweep:
        prefix = args.curve_out or Path(args.checkpoint).with_suffix("").as_posix() + ".curve"
        md, png = write_curve(prefix, report, series, points,
                              f"{names} on {args.corpus}: quality against diversity")
        report += f"\n\nwrote {md} and {png}"
    return report


EVAL_NOISE_BATCH = 256  # held-out sentences per teacher-forced pass: bounds the (N, S, V) logits


@torch.no_grad()
def held_out_nll(gan: GAN, val: np.ndarray, seed: int, device: torch.device | str = "cpu") -> float:
    """The generator's teacher-forced cross-entropy (nats/word, `<end>` included) of the held-out
    sentences, with noise from `seed`: the measure training reports as its held-out NLL."""
    generator = gan.generator.eval().to(device)
    rng = torch.Generator().manual_seed(seed)
    total, words = 0.0, 0
    for start in range(0, len(val), EVAL_NOISE_BATCH):
        real = torch.from_numpy(np.asarray(val[start : start + EVAL_NOISE_BATCH])).to(device)
        count = int(sentence_mask(real).sum())
        total += float(mle_loss(generator, real, draw_noise(gan.config, len(real), rng, device))) * count
        words += count
    return total / max(words, 1)
