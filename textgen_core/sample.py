"""`python -m textgen_core.sample CKPT --prompt TEXT`: sample with the torch model (KV cache),
streaming plain text to stdout; the same sampling code and settings as the runtime."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from runtime.errors import MarkupError, TextgenError
from runtime.markup.copy_index import validate_min_run
from runtime.markup.render import to_html
from runtime.terminal_text import sanitize
from textgen_core.markup import add_markup_flags, corpus_index, write_html
from textgen_core.models.stack.loading import load_gpt_or_stack
from textgen_core.sampling import generate
from textgen_core.stack_sampling import generate_stack
from textgen_core.training.config import DEVICES
from textgen_core.training.device import resolve_device


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m textgen_core.sample",
                                     description="Continue a prompt with a trained checkpoint.")
    parser.add_argument("checkpoint")
    parser.add_argument("--prompt", default="", help="text to continue (default: a new line)")
    parser.add_argument("--max-new-tokens", type=int, default=500)
    parser.add_argument("--temperature", type=float, default=0.8, help="0 = greedy")
    parser.add_argument("--top-k", type=int, default=None)
    parser.add_argument("--top-p", type=float, default=None)
    parser.add_argument("--repetition-penalty", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--device", choices=DEVICES, default="auto")
    parser.add_argument("--html", metavar="OUT.html",
                        help="also write the text as HTML, colouring passages copied verbatim from "
                             "the training corpus")
    parser.add_argument("--markup-corpus", metavar="CORPUS",
                        help="corpus for --html (default: the one recorded in the checkpoint)")
    add_markup_flags(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        validate_min_run(args.min_run)
        payload, model, tokenizer = load_gpt_or_stack(args.checkpoint)
        device = resolve_device(args.device)
        sampler = generate_stack if payload["kind"] == "stack" else generate
        pieces = sampler(
            model.to(device), tokenizer, args.prompt, max_new_tokens=args.max_new_tokens,
            temperature=args.temperature, top_k=args.top_k, top_p=args.top_p,
            repetition_penalty=args.repetition_penalty, seed=args.seed, device=device,
        )
        sys.stdout.write(sanitize(args.prompt))
        generated = []
        for piece in pieces:
            generated.append(piece)
            sys.stdout.write(sanitize(piece))
            sys.stdout.flush()
        sys.stdout.write("\n")
        if args.html:
            _write_markup(args, payload.get("train_state") or {}, "".join(generated))
    except TextgenError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        sys.stdout.write("\n")
        return 130
    return 0


def _write_markup(args: argparse.Namespace, train_state: dict, text: str) -> None:
    corpus, encoding = args.markup_corpus, None
    if corpus is None:
        corpus, encoding = train_state.get("corpus"), train_state.get("encoding")
    if not corpus:
        raise MarkupError("--html: the checkpoint records no training corpus; pass --markup-corpus")
    markup = corpus_index(corpus, encoding, args.gutenberg_mirror).mark(text, args.min_run)
    page = to_html(markup, title=f"Sample from {Path(args.checkpoint).name}", prompt=args.prompt,
                   corpus=corpus)
    print(f"wrote {write_html(args.html, page)}: {markup.summary()}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
