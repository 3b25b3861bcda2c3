"""`python -m textgen_core.evaluate CKPT --corpus X`: loss, perplexity and bits per character."""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from rich.console import Console

from runtime.command_line import Parser
from runtime.file_kind import TAKES_CHECKPOINT, explained
from runtime.terminal_text import plain, print_error
from runtime.tokenizer import CharTokenizer
from runtime.word_tokenizer import UNK_ID, WordTokenizer
from textgen_core.data.corpus import recorded_corpus, resolve_corpus
from textgen_core.data.token_store import load_token_splits
from textgen_core.errors import ConfigError, TextgenError
from textgen_core.metrics.generation_eval import add_generation_arguments, generation_report
from textgen_core.models.gpt import gpt_from_checkpoint
from textgen_core.models.stack.loading import stack_from_checkpoint
from textgen_core.training.checkpoint import load_checkpoint
from textgen_core.training.config import DEVICES
from textgen_core.training.device import resolve_device
from textgen_core.training.evaluation import corpus_loss
from textgen_core.training.stateful import stream_corpus_loss

SPLITS = ("val", "train", "all")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="python -m textgen_core.evaluate",
        description="Loss and perplexity of a checkpoint on a corpus.",
    )
    parser.add_argument("checkpoint", metavar="CHECKPOINT.pt",
                        help="a .pt checkpoint written by textgen_core.train")
    parser.add_argument("--corpus", metavar="SPEC",
                        help="default: the corpus the checkpoint was trained on (else shakespeare); "
                             "or 'shakespeare', a .txt file or a folder of them, gutenberg:ID,...")
    parser.add_argument("--encoding", metavar="NAME",
                        help="text encoding of the corpus files (default: the one the "
                             "checkpoint was trained with, else utf-8)")
    parser.add_argument("--gutenberg-mirror", metavar="URL",
                        help="Project Gutenberg mirror for gutenberg:IDS and the named collections")
    parser.add_argument("--split", choices=SPLITS, default="val",
                        help="val: the last 10%% (never trained on); train: the first 90%%; all")
    parser.add_argument("--max-tokens", type=int, default=0,
                        help="evaluate at most this many tokens (0: all of the split)")
    parser.add_argument("--batch-size", type=int, default=32, help="windows per forward pass")
    parser.add_argument("--device", choices=DEVICES, default="auto",
                        help="auto: cuda, then mps, then cpu")
    add_generation_arguments(parser)
    return parser


def evaluate(args: argparse.Namespace) -> str:
    if args.max_tokens < 0:
        raise ConfigError(f"--max-tokens must be >= 0, got {args.max_tokens}")
    if args.batch_size <= 0:
        raise ConfigError(f"--batch-size must be a positive integer, got {args.batch_size}")
    with explained((args.checkpoint, TAKES_CHECKPOINT)):
        payload = load_checkpoint(args.checkpoint)
    if args.corpus is None:  # measure on what the model was trained on, if that is local
        corpus, encoding = recorded_corpus(payload.get("train_state"), args.checkpoint)
        args.corpus = corpus or "shakespeare"
        if args.encoding is None:
            args.encoding = encoding
    if args.generation_metrics or payload["kind"] == "gan":  # sampled sentences: BLEU, self-BLEU
        return generation_report(args, payload)
    if payload["kind"] == "stack":  # a stack reads the same windows as a GPT
        model, tokenizer = stack_from_checkpoint(payload)
    elif payload["kind"] == "gpt":
        model, tokenizer = gpt_from_checkpoint(payload)
    else:
        raise ConfigError(f"{args.checkpoint} holds a {payload['kind']!r} model; evaluate supports "
                          "gpt, gan and stack")
    corpus = resolve_corpus(args.corpus, args.encoding, args.gutenberg_mirror)
    score = split_score(model, tokenizer, corpus, args.split, batch_size=args.batch_size,
                        device=resolve_device(args.device), max_tokens=args.max_tokens)
    return (
        f"{args.corpus} ({args.split}, {score.tokens:,} tokens): loss {score.loss:.4f}, "
        f"perplexity {math.exp(score.loss):.3f}, {score.loss / math.log(2):.4f} bits/token, "
        f"{score.bits_per_char:.4f} bits/char{score.note}"
    )


@dataclass(frozen=True)
class Score:
    """A model's next-token loss on one split of a corpus."""

    tokens: int  # predicted
    loss: float  # nats per token
    bits_per_char: float  # total bits over the characters the tokens spell: compares tokenizers
    note: str = ""  # unknown characters left out, <unk> words


def split_score(model: Any, tokenizer: Any, corpus: Any, split: str = "val", *, batch_size: int = 32,
                device: torch.device, max_tokens: int = 0) -> Score:
    """`model`'s loss on the whole `split` of `corpus` (resolved files), in consecutive windows
    of its context; what `evaluate` reports and the frontier benchmark scores recipes by."""
    if isinstance(tokenizer, CharTokenizer) and not tokenizer.unk:
        # Characters the model never saw are read as one id past its vocabulary, counted and
        # left out, rather than refused.
        tokenizer = CharTokenizer(tokenizer.chars, unk=True)
    splits = load_token_splits(corpus, tokenizer)
    tokens = {"val": splits.val, "train": splits.train, "all": splits.tokens}[split]
    chars_per_token = splits.split_chars(split) / max(len(tokens), 1)
    unknown_note = ""
    if isinstance(tokenizer, CharTokenizer):
        outside = tokens >= model.config.vocab_size
        if outside.any():
            unknown_note = f"; {int(outside.sum()):,} unknown character(s) left out"
            tokens = np.asarray(tokens)[~outside]
    elif isinstance(tokenizer, WordTokenizer):
        unknown_note = f"; {int((tokens == UNK_ID).sum()):,} <unk> word(s)"
    if max_tokens:
        tokens = tokens[: max_tokens + 1]
    block = model.config.block_size
    if len(tokens) < block + 1:
        raise ConfigError(
            f"the {split} split has {len(tokens)} tokens, fewer than the model's context + 1 "
            f"({block + 1})"
        )
    # A stateful yoke reads the same windows with its state carried through them in text order.
    measure = stream_corpus_loss if getattr(model.config, "yoke_state_size", 0) else corpus_loss
    loss, count = measure(model.to(device), tokens, block_size=block,
                          batch_size=batch_size, device=device)
    bits_per_char = loss / math.log(2) / chars_per_token  # total bits / characters they spell
    return Score(tokens=count, loss=loss, bits_per_char=bits_per_char, note=unknown_note)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        line = evaluate(args)
    except TextgenError as exc:
        print_error(exc)
        return 1
    Console().print(plain(line), highlight=False, soft_wrap=True)  # sentences and names hold [brackets]
    return 0


if __name__ == "__main__":
    sys.exit(main())
