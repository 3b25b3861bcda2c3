"""`python -m textgen_core.sample CKPT --prompt TEXT`: sample with the torch model (KV cache),
streaming plain text to stdout; the same sampling code and settings as the runtime.
`--num-samples`, `--prompt-file`, several `--temperature`s, `--stop` and `--output` sample
several sequences, each prompt's as one batch (runtime/multi_sample.py), as `runtime.chat` does.

A GAN checkpoint writes `--num-samples N` sentences (default 1), one per line, from the noise
the runtime draws for the same seed, at `--temperature` (default 1) (textgen_core/sampling.py);
the options it cannot take are refused with the chat's one-line errors (runtime/gan.py)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from runtime.command_line import Parser, add_echo, add_temperature
from runtime.errors import MarkupError, SamplingError, TextgenError
from runtime.file_kind import TAKES_CHECKPOINT, TAKES_TEXT, explained
from runtime.gan import check_gan_options
from runtime.markup.copy_index import validate_min_run
from runtime.markup.render import to_html
from runtime.multi_sample import (
    add_batch_flags,
    narrow_for_gan,
    prompts_of,
    run_to_stream,
    stops_of,
    validate_num_samples,
)
from runtime.sampler import (
    DEFAULT_MAX_NEW_TOKENS,
    SamplingSettings,
    validate_max_new_tokens,
    validate_seed,
)
from runtime.terminal_text import print_error, sanitize
from runtime.tokenizer import start_ids
from textgen_core.data.corpus import recorded_corpus
from textgen_core.errors import CheckpointError
from textgen_core.markup import add_markup_flags, corpus_index, write_html
from textgen_core.models.gan import gan_from_checkpoint
from textgen_core.models.gpt import gpt_from_checkpoint
from textgen_core.models.stack.loading import stack_from_checkpoint
from textgen_core.sampling import gan_sentences, piece_decoder, token_batches
from textgen_core.training.checkpoint import load_checkpoint
from textgen_core.training.config import DEVICES
from textgen_core.training.device import resolve_device

# --temperature stays None in the parsed flags: a GAN's default is 1, a GPT's this
DEFAULT_TEMPERATURE = SamplingSettings().temperature


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="python -m textgen_core.sample",
                    description="Continue a prompt with a trained checkpoint "
                                "(a GAN's: write sentences).")
    parser.add_argument("checkpoint", metavar="CHECKPOINT.pt",
                        help="a checkpoint written by textgen_core.train (an exported .onnx file: "
                             "runtime.chat --model)")
    parser.add_argument("--prompt", default=None, metavar="TEXT",
                        help="text to continue (default: the empty text); stdout holds the "
                             "continuation, after the prompt with --echo")
    add_echo(parser)
    parser.add_argument("--max-new-tokens", type=int, default=None,
                        help=f"tokens to generate (default {DEFAULT_MAX_NEW_TOKENS}; a GAN takes none)")
    add_temperature(parser, f"0 = greedy (default {DEFAULT_TEMPERATURE}; a GAN's default 1); "
                            "a comma list 0.5,1.0 (or the flag repeated): each prompt sampled at each")
    parser.add_argument("--top-k", type=int, default=None,
                        help="keep the k likeliest tokens (default: all)")
    parser.add_argument("--top-p", type=float, default=None,
                        help="nucleus sampling, in (0, 1] (default: off)")
    parser.add_argument("--repetition-penalty", type=float, default=1.0, help="1 = off")
    parser.add_argument("--seed", type=int, default=None, help="same seed, same text (default: random)")
    parser.add_argument("--num-samples", type=int, default=None, metavar="N",
                        help="N samples of each prompt and temperature, sampled as one batch "
                             "(default 1); GAN checkpoints: N sentences, one per line")
    add_batch_flags(parser)
    parser.add_argument("--device", choices=DEVICES, default="auto",
                        help="auto: cuda, then mps, then cpu")
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
        validate_seed(args.seed)
        with explained((args.checkpoint, TAKES_CHECKPOINT)):
            payload = load_checkpoint(args.checkpoint)
        kind = payload["kind"]
        if kind == "gan":
            narrow_for_gan(args)
            return _sample_gan(args, payload)
        if kind not in ("gpt", "stack"):
            raise CheckpointError(f"{args.checkpoint} holds a {kind!r} model, but this command "
                                  "needs a 'gpt', 'gan' or 'stack' model")
        model, tokenizer = (stack_from_checkpoint if kind == "stack" else gpt_from_checkpoint)(payload)
        device = resolve_device(args.device)
        batches = token_batches(model.to(device), device)
        temperatures = [DEFAULT_TEMPERATURE] if args.temperature is None else args.temperature
        settings = SamplingSettings(temperatures[0], args.top_k, args.top_p,
                                    args.repetition_penalty)
        max_new_tokens = validate_max_new_tokens(
            DEFAULT_MAX_NEW_TOKENS if args.max_new_tokens is None else args.max_new_tokens)
        with explained((args.prompt_file, TAKES_TEXT)):
            prompts = prompts_of(args, "")
        assert prompts is not None  # the default prompt is the empty one
        num_samples = validate_num_samples(1 if args.num_samples is None else args.num_samples)
        if args.html and len(prompts) * len(temperatures) * num_samples > 1:
            raise SamplingError("--html marks one sample; leave it out with several prompts, "
                                "temperatures or --num-samples")
        texts = run_to_stream(batches, piece_decoder(tokenizer),
                              lambda text: start_ids(tokenizer, text), sys.stdout,
                              prompts=prompts, temperatures=temperatures, settings=settings,
                              num_samples=num_samples, seed=args.seed,
                              max_new_tokens=max_new_tokens, stops=stops_of(args),
                              show_prompt=args.echo, output=args.output, model=args.checkpoint)
        if args.html:
            _write_markup(args, payload.get("train_state") or {}, texts[0])
    except TextgenError as exc:
        print_error(exc)
        return 1
    except KeyboardInterrupt:
        sys.stdout.write("\n")
        return 130
    return 0


def _sample_gan(args: argparse.Namespace, payload: dict) -> int:
    check_gan_options(args, interactive=False)
    if args.html:
        raise SamplingError("--html marks GPT and stack samples (a GAN writes lowercased words, "
                            "which the corpus markup cannot match); leave it out")
    gan, tokenizer = gan_from_checkpoint(payload)
    count = 1 if args.num_samples is None else args.num_samples
    temperature = 1.0 if args.temperature is None else args.temperature
    for sentence in gan_sentences(gan.generator, tokenizer, count, args.seed,
                                  resolve_device(args.device), temperature):
        sys.stdout.write(sanitize(sentence) + "\n")
    sys.stdout.flush()
    return 0


def _write_markup(args: argparse.Namespace, train_state: dict, text: str) -> None:
    corpus, encoding = args.markup_corpus, None
    if corpus is None:
        corpus, encoding = recorded_corpus(train_state, args.checkpoint, "--markup-corpus")
    if not corpus:
        raise MarkupError("--html: the checkpoint records no training corpus; pass --markup-corpus")
    markup = corpus_index(corpus, encoding, args.gutenberg_mirror).mark(text, args.min_run)
    page = to_html(markup, title=f"Sample from {Path(args.checkpoint).name}", prompt=args.prompt or "",
                   corpus=corpus)
    print(sanitize(f"wrote {write_html(args.html, page)}: {markup.summary()}"), file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
