"""`python -m runtime.chat --model models/gan.onnx`: sentences from a GAN generator.

With `--num-samples N` it prints N sentences, one per line, and exits. Without it, an interactive
session: each Enter writes a new sentence (from fresh noise); `/seed N` restarts the noise
stream, `/quit` (or Ctrl-D) leaves. A GAN writes from noise alone, so it takes no prompt. A
TorchScript file (`--trust-torchscript`) is sampled with the same noise and gives the same sentences.

A GAN takes no --temperature (nor --top-k, --top-p): its exported graph chooses every word itself,
by inverse-CDF sampling of its softmax at temperature 1 with one uniform input per step (or by
argmax), and each step's word feeds the next step inside the graph, so the runtime never sees a
distribution it could reshape. Honouring a temperature would need it as a graph input; the flag is
refused in one line here and in `textgen_core.sample` rather than silently ignored.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.panel import Panel
from rich.text import Text

from runtime.errors import SamplingError, TextgenError
from runtime.gan_model import GANSampler, draw_noise
from runtime.onnx_file import model_kind
from runtime.sampler import validate_seed
from runtime.terminal_text import print_error, sanitize
from runtime.torchscript_trust import open_trusted, torchscript_kind

WORDS_CHOSEN_IN_THE_MODEL = ("a GAN samples each word inside the model, from its softmax at "
                             "temperature 1 (or by argmax), and takes no {flag}; leave it out")


def _error(console: Console, message: str) -> None:
    print_error(message, console)


def file_kind(path: str | Path) -> str | None:
    """The kind of model in an ONNX file, or in a TorchScript file's header (read without torch
    and without running the file); None when it cannot be read (the loader then says why)."""
    return torchscript_kind(path) if Path(path).suffix == ".ts" else model_kind(path)


def not_a_gan(path: str | Path, kind: str) -> SamplingError:
    return SamplingError(f"--num-samples draws sentences from a GAN; {path} holds a {kind!r} "
                         "model (give it --prompt, or leave --num-samples out)")


def check_gan_options(args: argparse.Namespace, interactive: bool = True) -> None:
    """Refuse, in one line, what a GAN cannot take (the chat's and `textgen_core.sample`'s flags):
    a prompt, the text samplers' settings (see the module docstring), a count below 1."""
    if args.prompt is not None:
        instead = "--num-samples N, or Enter in the interactive mode" if interactive else "--num-samples N"
        raise SamplingError(f"a GAN writes sentences from noise and takes no --prompt; use {instead}")
    for flag, value in (("--temperature", args.temperature), ("--top-k", args.top_k),
                        ("--top-p", args.top_p)):
        if value is not None:
            raise SamplingError(WORDS_CHOSEN_IN_THE_MODEL.format(flag=flag))
    if args.num_samples is not None and args.num_samples < 1:
        raise SamplingError(f"--num-samples must be a positive integer, got {args.num_samples}")


def open_sampler(path: Path, threads: int | None, trust_torchscript: bool) -> GANSampler:
    """The ONNX GAN sampler, or the torch-side one (same API) for a trusted TorchScript file."""
    if path.suffix == ".ts":
        return open_trusted(path, trust_torchscript, kinds=("gan",))
    return GANSampler(path, threads=threads)


def _check(args: argparse.Namespace) -> None:
    kind = file_kind(args.model)
    if kind not in (None, "gan"):
        raise not_a_gan(args.model, kind)
    check_gan_options(args)


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
                rng = np.random.default_rng(None if arg in ("", "off")
                                            else validate_seed(int(arg), "/seed"))
            except ValueError:
                _error(console, f"/seed needs a number, got {arg!r}")
                continue
            except SamplingError as exc:
                _error(console, str(exc))
                continue
            console.print(f"noise restarted with seed {arg or 'random'}", style="dim")
            continue
        if command:
            console.print("press Enter for a new sentence (/quit leaves)", style="dim")
            continue
        try:
            ids, _ = sampler.run(draw_noise(sampler.config, 1, rng))
        except TextgenError as exc:  # the graph failed (runtime/onnx_file.py CheckedSession)
            _error(console, str(exc))
            continue
        console.file.write(sanitize(sampler.tokenizer.decode(ids[0])) + "\n")
        console.file.flush()


def gan_main(args: argparse.Namespace) -> int:
    err = Console(stderr=True)
    try:
        _check(args)
        validate_seed(args.seed)
        sampler = open_sampler(Path(args.model), args.threads, args.trust_torchscript)
        if args.num_samples is not None:
            for sentence in sampler.sample(args.num_samples, args.seed):
                sys.stdout.write(sanitize(sentence) + "\n")
            sys.stdout.flush()
            return 0
    except TextgenError as exc:
        _error(err, str(exc))
        return 1
    return interactive(sampler, args.seed, Console(highlight=False))
