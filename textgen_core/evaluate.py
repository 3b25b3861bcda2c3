"""`python -m textgen_core.evaluate CKPT --corpus X`: loss, perplexity and bits per character."""

from __future__ import annotations

import argparse
import math
import sys

from rich.console import Console
from rich.text import Text

from textgen_core.data.corpus import resolve_corpus
from textgen_core.data.token_store import load_token_splits
from textgen_core.errors import ConfigError, TextgenError
from textgen_core.metrics.generation_eval import (
    add_generation_arguments,
    generation_report,
    wants_generation_metrics,
)
from textgen_core.models.stack.loading import load_gpt_or_stack
from textgen_core.training.config import DEVICES
from textgen_core.training.device import resolve_device
from textgen_core.training.evaluation import corpus_loss
from textgen_core.training.stateful import stream_corpus_loss

SPLITS = ("val", "train", "all")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m textgen_core.evaluate",
        description="Loss and perplexity of a checkpoint on a corpus.",
    )
    parser.add_argument("checkpoint", help="a .pt checkpoint written by textgen_core.train")
    parser.add_argument("--corpus", default="shakespeare",
                        help="'shakespeare' (default), a .txt file or a folder of them")
    parser.add_argument("--encoding", help="text encoding of the corpus files (default utf-8)")
    parser.add_argument("--gutenberg-mirror", metavar="URL",
                        help="Project Gutenberg mirror for gutenberg:IDS and the named collections")
    parser.add_argument("--split", choices=SPLITS, default="val",
                        help="val: the last 10%% (never trained on); train: the first 90%%; all")
    parser.add_argument("--max-tokens", type=int, default=0,
                        help="evaluate at most this many tokens (0: all of the split)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--device", choices=DEVICES, default="auto")
    add_generation_arguments(parser)
    return parser


def evaluate(args: argparse.Namespace) -> str:
    if args.max_tokens < 0:
        raise ConfigError(f"--max-tokens must be >= 0, got {args.max_tokens}")
    if args.batch_size <= 0:
        raise ConfigError(f"--batch-size must be a positive integer, got {args.batch_size}")
    if wants_generation_metrics(args):  # a GAN, or a GPT's sampled sentences: BLEU, self-BLEU
        return generation_report(args)
    _, model, tokenizer = load_gpt_or_stack(args.checkpoint)  # a stack reads the same windows
    device = resolve_device(args.device)
    splits = load_token_splits(resolve_corpus(args.corpus, args.encoding, args.gutenberg_mirror), tokenizer)
    if args.split == "val":
        tokens = splits.val
    elif args.split == "train":
        tokens = splits.train
    else:
        tokens = splits.tokens
    if args.max_tokens:
        tokens = tokens[: args.max_tokens + 1]
    block = model.config.block_size
    if len(tokens) < block + 1:
        raise ConfigError(
            f"the {args.split} split has {len(tokens)} tokens, fewer than the model's context + 1 "
            f"({block + 1})"
        )
    # A stateful yoke reads the same windows with its state carried through them in text order.
    measure = stream_corpus_loss if getattr(model.config, "yoke_state_size", 0) else corpus_loss
    loss, count = measure(model.to(device), tokens, block_size=block,
                          batch_size=args.batch_size, device=device)
    return (
        f"{args.corpus} ({args.split}, {count:,} tokens): loss {loss:.4f}, "
        f"perplexity {math.exp(loss):.3f}, {loss / math.log(2):.4f} bits/token"
    )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        line = evaluate(args)
    except TextgenError as exc:
        Console(stderr=True).print(Text.assemble(("error: ", "bold red"), str(exc)), soft_wrap=True)
        return 1
    Console().print(line, highlight=False, markup=False, soft_wrap=True)  # sentences hold [brackets]
    return 0


if __name__ == "__main__":
    sys.exit(main())
