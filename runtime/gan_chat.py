"""`python -m runtime.chat --model models/gan.onnx`: sentences from a GAN generator.

With `--num-samples N` it prints N sentences, one per line, and exits. Without it, an interactive
session: each Enter writes a new sentence (from fresh noise); `/seed N` restarts the noise
stream, `/quit` (or Ctrl-D) leaves. A GAN writes from noise alone, so it takes no prompt.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
from rich.console import Console
from rich.panel import Panel
from rich.text import Text

from runtime.errors import SamplingError, TextgenError
from runtime.gan_model import GANSampler, draw_noise
from runtime.onnx_file import model_kind
from runtime.terminal_text import sanitize


def _error(console: Console, message: str) -> None:
    console.print(Text.assemble(("error: ", "bold red"), sanitize(message)), soft_wrap=True)


def _check(args: argparse.Namespace) -> None:
    kind = model_kind(args.model)
    if kind not in (None, "gan"):
        raise SamplingError(f"--num-samples draws sentences from a GAN; {args.model} holds a {kind!r} "
                            "model (give it --prompt, or leave --num-samples out)")
    if args.prompt is not None:
        raise SamplingError("a GAN writes sentences from noise and takes no --prompt; use "
                            "--num-samples N, or Enter in the interactive mode")
    if args.num_samples is not None and args.num_samples < 1:
        raise SamplingError(f"--num-samples must be a positive integer, got {args.num_samples}")


def interactive(sampler: GANSampler, seed: int | None, console: Console) -> int:
    rng = np.random.default_rng(seed)
    c = sampler.config
    console.print(Panel(Text.assemble(
        (f"{sampler.path}\n", "bold"),
        f"GAN generator: {c.get('seq_len')} words at most, vocabulary {sampler.vocab_size}, "
        f"words chosen by {c.get('token_choice', 'sample')}, seed "
        f"{seed if seed is not None else 'random'}\n",
        ("Enter: a new sentence; /seed N restarts the noise; /quit leaves", "dim")),
        title="textgen GAN", title_align="left"))
    while True:
        try:
            line = console.input(Text("› ", style="bold cyan"))
        except (EOFError, KeyboardInterrupt):
            console.print()
            return 0
        command = line.strip()
        if command in ("/quit", "/exit", "/q"):
            return 0
        if command.startswith("/seed"):
            arg = command[len("/seed"):].strip()
            try:
                rng = np.random.default_rng(None if arg in ("", "off") else int(arg))
            except ValueError:
                _error(console, f"/seed needs a number, got {arg!r}")
                continue
            console.print(f"noise restarted with seed {arg or 'random'}", style="dim")
            continue
        if command:
            console.print("press Enter for a new sentence (/quit leaves)", style="dim")
            continue
        ids, _ = sampler.run(draw_noise(sampler.config, 1, rng))
        console.file.write(sanitize(sampler.tokenizer.decode(ids[0])) + "\n")
        console.file.flush()


def gan_main(args: argparse.Namespace) -> int:
    err = Console(stderr=True)
    try:
        _check(args)
        sampler = GANSampler(args.model, threads=args.threads)
        if args.num_samples is not None:
            for sentence in sampler.sample(args.num_samples, args.seed):
                sys.stdout.write(sanitize(sentence) + "\n")
            sys.stdout.flush()
            return 0
    except TextgenError as exc:
        _error(err, str(exc))
        return 1
    return interactive(sampler, args.seed, Console(highlight=False))
