"""`python -m textgen_core.evaluate CKPT --corpus X` for generated sentences: the GAN always, a GPT
with `--generation-metrics`.

Rows: the model's sentences (a GPT at each of `--temperatures`), the unigram baseline of the same
vocabulary, and held-out real sentences (the ceiling). BLEU-2..4 against held-out sentences of the
corpus, self-BLEU-2..4 within each row, and with `--judge GPT.pt` the judge's NLL per character.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import Any

from runtime.file_kind import TAKES_CHECKPOINT, explained
from textgen_core.data.corpus import resolve_corpus
from textgen_core.data.sentences import load_sentences
from textgen_core.errors import ConfigError
from textgen_core.metrics.bleu import References
from textgen_core.metrics.judge import judge_nll
from textgen_core.metrics.report import Row, measure, render
from textgen_core.metrics.samplers import gan_sentences, gpt_sentences, unigram_sentences
from textgen_core.models.gan import gan_from_checkpoint
from textgen_core.models.gpt import gpt_from_checkpoint
from textgen_core.training.checkpoint import load_checkpoint
from textgen_core.training.device import resolve_device

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
                       help="GPT sampling temperatures: one, a comma list or the flag repeated, as "
                            f"in sample and chat (default {DEFAULT_TEMPERATURES})")
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
    """`payload`: the checkpoint at `args.checkpoint`, loaded once by the caller."""
    if args.num_samples < 2:
        raise ConfigError(f"--num-samples must be at least 2, got {args.num_samples}")
    text = DEFAULT_TEMPERATURES if args.temperatures is None else ",".join(args.temperatures)
    temperatures = _temperatures(text)
    device = resolve_device(args.device)
    kind = payload["kind"]
    if kind not in ("gan", "gpt"):
        raise ConfigError(f"{args.checkpoint} holds a {kind!r} model; generation metrics support gan, gpt")
    judge: Callable[[list[str]], float] | None = None
    if args.judge:
        with explained((args.judge, TAKES_CHECKPOINT)):
            judge_model, judge_chars = gpt_from_checkpoint(load_checkpoint(args.judge, kind="gpt"))

        def judge(texts: list[str]) -> float:
            return judge_nll(judge_model, judge_chars, texts, device=device)[0]

    corpus = resolve_corpus(args.corpus, args.encoding, args.gutenberg_mirror)
    if kind == "gan":
        if args.seq_len is not None or args.vocab_size is not None:
            raise ConfigError("a GAN is measured with its own --seq-len and vocabulary; drop "
                              "--seq-len/--vocab-size")
        gan, words = gan_from_checkpoint(payload)
        seq_len = gan.config.seq_len
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
    rows: list[Row] = []
    silent: list[str] = []  # GPT rows without a single sentence of the measured length
    if kind == "gan":
        rows.append(measure("GAN", gan_sentences(gan, words, n, args.seed, device=device), references, judge))
    else:
        model, chars = gpt_from_checkpoint(payload)
        for t in temperatures:
            sampled = gpt_sentences(model, chars, data.tokenizer, n, t, seq_len, args.seed, device=device)
            if sampled:
                rows.append(measure(f"GPT T={t:g}", sampled, references, judge))
            else:  # an undertrained model: the table says so instead of failing the whole report
                silent.append(f"GPT T={t:g}")
        if not rows:
            raise ConfigError(f"the GPT wrote no sentence of 1..{seq_len - 1} words at any temperature "
                              f"({text})")
    rows.append(measure("unigram baseline", unigram_sentences(data, n, args.seed), references, judge))
    rows.append(measure("held-out real", held_out[len(held_out) - n :], references, judge))
    header = (f"{args.checkpoint} on {args.corpus}: {n} sentences per row, {len(held_out) - n} held-out "
              f"references, sentences of at most {seq_len - 1} words, vocabulary {data.tokenizer.vocab_size}"
              + (f", judge {args.judge} (nats/char)" if args.judge else "")
              + (f"; no sentence of 1..{seq_len - 1} words from {', '.join(silent)}" if silent else ""))
    return render(rows, header)
