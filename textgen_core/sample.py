"""`python -m textgen_core.sample CKPT --prompt TEXT`: sample with the torch model (KV cache),
streaming plain text to stdout; the same sampling code and settings as the runtime."""

from __future__ import annotations

import argparse
import sys

from runtime.errors import TextgenError
from runtime.terminal_text import sanitize
from textgen_core.models.loading import gpt_from_checkpoint
from textgen_core.sampling import generate
from textgen_core.training.checkpoint import load_checkpoint
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
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        model, tokenizer = gpt_from_checkpoint(load_checkpoint(args.checkpoint, kind="gpt"))
        device = resolve_device(args.device)
        pieces = generate(
            model.to(device), tokenizer, args.prompt, max_new_tokens=args.max_new_tokens,
            temperature=args.temperature, top_k=args.top_k, top_p=args.top_p,
            repetition_penalty=args.repetition_penalty, seed=args.seed, device=device,
        )
        sys.stdout.write(sanitize(args.prompt))
        for piece in pieces:
            sys.stdout.write(sanitize(piece))
            sys.stdout.flush()
        sys.stdout.write("\n")
    except TextgenError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        sys.stdout.write("\n")
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
