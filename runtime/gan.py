"""The GAN in the runtime: its generator's ONNX file, the noise it reads, and its chat.

Sample sentences from an exported GAN generator with numpy + onnxruntime.

The file is held to the same checks as a GPT file (runtime/onnx_file.py: structure scan,
external data and custom domains refused, textgen header, checksum, operators), with every size
of its config bounded (runtime/model_limits.py), then to the GAN contract:
inputs `global_noise`, `step_noise`, `block_noise` (and `uniform` when the model samples its
words), outputs `token_ids` [batch, S] int64 and `probs` [batch, S, V] float32. The noise is drawn
here with numpy, from the distribution the model was trained with.

`python -m runtime.chat --model models/gan.onnx`: sentences from a GAN generator.

With `--num-samples N` it prints N sentences, one per line, and exits. Without it, an interactive
session: each Enter writes a new sentence (from fresh noise); `/seed N` restarts the noise
stream, `/quit` (or Ctrl-D) leaves. A GAN writes from noise alone, so it takes no prompt. A
TorchScript file (`--trust-torchscript`) is sampled with the same noise and gives the same sentences.

The exported graph chooses every word itself, by inverse-CDF sampling of softmax(logits / T) with
one uniform input per step (or by argmax), and each step's word feeds the next step inside the
graph, so the runtime never sees a distribution it could reshape: `--temperature T` reaches the
graph as its `temperature` input (T = 0, or below runtime/sampler.py's GREEDY_BELOW: argmax), which
is also an initializer holding 1.0, so a caller that does not feed it samples at T = 1. A file
exported before that input existed samples at T = 1 only; any other T is refused in one line, as
it is for a generator that picks words by argmax. --top-k and --top-p are refused in one line.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.panel import Panel
from rich.text import Text

from runtime.contract import (
    BLOCK_NOISE,
    GAN_OUTPUTS,
    GLOBAL_NOISE,
    PROBS,
    STEP_NOISE,
    TEMPERATURE,
    TOKEN_IDS,
    UNIFORM,
)
from runtime.errors import SamplingError, TextgenError
from runtime.line_editing import read_line
from runtime.model_limits import activation_bytes, bounded_size, check_memory
from runtime.onnx_file import FLOAT, INT64, Port, basic_session_options, check_io, fail, read_textgen_onnx
from runtime.onnx_file import model_kind as model_kind  # runtime/chat.py imports it from here
from runtime.sampler import SamplingSettings, validate_seed
from runtime.terminal_text import print_error, sanitize
from runtime.torchscript_trust import open_trusted, torchscript_kind
from runtime.word_tokenizer import WordTokenizer

TRUNCATION = 1.5  # textgen_core.models.gan.TRUNCATION


def draw_noise(config: dict[str, Any], batch: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """The generator's random inputs for `batch` sentences (float32)."""
    S, E, B = config["seq_len"], config["n_embd"], config["n_noise_blocks"]
    shapes = {GLOBAL_NOISE: (batch, S) if config.get("noise_1d") else (batch, S, E),
              STEP_NOISE: (batch, S, E), BLOCK_NOISE: (batch, B, S, E)}
    dist = config.get("noise_dist", "normal")
    noise = {}
    for name, shape in shapes.items():
        if dist == "uniform":
            noise[name] = rng.uniform(-1.0, 1.0, size=shape)
        elif dist == "truncated":
            values = rng.standard_normal(shape)
            outside = np.abs(values) > TRUNCATION
            while outside.any():  # redraw until every value lies within ±TRUNCATION
                values[outside] = rng.standard_normal(int(outside.sum()))
                outside = np.abs(values) > TRUNCATION
            noise[name] = values
        else:
            noise[name] = rng.standard_normal(shape)
    if config.get("token_choice", "sample") == "sample":
        noise[UNIFORM] = rng.random((batch, S))
    return {k: v.astype(np.float32) for k, v in noise.items()}


class GANSampler:
    """A checked GAN ONNX model; `sample(n, seed)` returns n sentences as text."""

    kind = "gan"

    def __init__(self, path: str | Path, threads: int | None = None, spin: bool | None = None) -> None:
        self.path = Path(path)
        checked = read_textgen_onnx(self.path, "gan", "not a GAN")
        tokenizer, self.config = checked.tokenizer, checked.config
        if not isinstance(tokenizer, WordTokenizer):
            raise fail(self.path, "a GAN file must carry a word vocabulary")
        self.tokenizer: WordTokenizer = tokenizer
        checked.verify_checksum()
        S, E, B, V = (bounded_size(self.path, self.config, key, "GAN config")
                      for key in ("seq_len", "n_embd", "n_noise_blocks", "vocab_size"))
        if tokenizer.vocab_size != V:
            raise fail(self.path, f"the vocabulary has {tokenizer.vocab_size} words but the model "
                                  f"{V}")
        # per sentence: the noise (B + 2 planes of S x E) and the probabilities
        check_memory(self.path, activation_bytes(context=S, width=E * (B + 2), vocab=V, heads=1))
        self.session = checked.session(basic_session_options(threads, spin))
        self._check_io()
        # an initializer that is also an input: ONNX's optional input with a default (export/gan.py)
        self.takes_temperature = any(i.name == TEMPERATURE
                                     for i in self.session.get_overridable_initializers())

    @property
    def seq_len(self) -> int:
        return int(self.config["seq_len"])

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.vocab_size

    def _check_io(self) -> None:
        inputs = {name: Port(FLOAT, array.ndim)
                  for name, array in draw_noise(self.config, 1, np.random.default_rng(0)).items()}
        outputs = {TOKEN_IDS: Port(INT64, 2), PROBS: Port(FLOAT, 3)}
        check_io(self.path, self.session, "textgen GAN contract", inputs, outputs)
        probs = next(o for o in self.session.get_outputs() if o.name == PROBS)
        if isinstance(probs.shape[2], int) and probs.shape[2] != self.vocab_size:
            raise fail(self.path, f"output probs has {probs.shape[2]} words, the vocabulary "
                                  f"{self.vocab_size}")

    def run(self, noise: dict[str, np.ndarray], temperature: float = 1.0
            ) -> tuple[np.ndarray, np.ndarray]:
        """(token_ids [N, S], probs [N, S, V]) for explicit noise (see `draw_noise`), the words
        drawn at `temperature` (`probs` stay the model's, at temperature 1)."""
        feed = dict(noise)
        if self.takes_temperature:
            feed[TEMPERATURE] = np.array(check_temperature(self, temperature), dtype=np.float32)
        else:
            check_temperature(self, temperature)
        token_ids, probs = self.session.run(list(GAN_OUTPUTS), feed)
        return token_ids, probs

    def sample_ids(self, count: int, seed: int | None = None, temperature: float = 1.0) -> np.ndarray:
        """Token ids [count, S] of `count` sentences at `temperature`; the same seed and
        temperature give the same sentences."""
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            raise SamplingError(f"--num-samples must be a positive integer, got {count!r}")
        check_temperature(self, temperature)  # before any noise is drawn
        rng = np.random.default_rng(seed)
        return self.run(draw_noise(self.config, count, rng), temperature)[0]

    def sample(self, count: int, seed: int | None = None, temperature: float = 1.0) -> list[str]:
        """`count` sentences as text; the same seed and temperature give the same sentences."""
        return [self.tokenizer.decode(row) for row in self.sample_ids(count, seed, temperature)]


def check_temperature(sampler: Any, temperature: float) -> float:
    """`temperature` checked as runtime/sampler.py checks it, and refused in one line where
    `sampler` (a GANSampler or TorchScriptGAN: `path`, `config`, `takes_temperature`) can only
    draw at 1: a generator that picks words by argmax, a file exported before the input."""
    t = SamplingSettings(temperature=temperature).temperature
    if t == 1.0:
        return t
    if sampler.config.get("token_choice", "sample") == "argmax":
        raise SamplingError(f"{sampler.path} picks every word by argmax (--token-choice argmax) "
                            "and takes no --temperature; leave it out")
    if not sampler.takes_temperature:
        raise SamplingError(f"{sampler.path} was exported before GAN temperatures and samples at "
                            f"1 only; export it again (python -m export) for --temperature {t:g}")
    return t


WORDS_CHOSEN_IN_THE_MODEL = ("a GAN samples each word inside the model, from its softmax at "
                             "--temperature (or by argmax), and takes no {flag}; leave it out")


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
    for flag, value in (("--top-k", args.top_k), ("--top-p", args.top_p)):
        if value is not None:
            raise SamplingError(WORDS_CHOSEN_IN_THE_MODEL.format(flag=flag))
    if args.temperature is not None:
        SamplingSettings(temperature=args.temperature)  # the GPT's rule and message
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


def interactive(sampler: GANSampler, seed: int | None, console: Console,
                temperature: float = 1.0) -> int:
    rng = np.random.default_rng(seed)
    c = sampler.config
    console.print(Panel(Text.assemble(  # the path and the file's config values, filtered
        (sanitize(f"{sampler.path}\n"), "bold"),
        sanitize(f"GAN generator: {c.get('seq_len')} words at most, vocabulary {sampler.vocab_size}, "
                 f"words chosen by {c.get('token_choice', 'sample')} at temperature {temperature:g}, seed "
                 f"{seed if seed is not None else 'random'}\n"),
        ("Enter: a new sentence; /seed N restarts the noise; /quit leaves", "dim")),
        title="textgen GAN", title_align="left"))
    while True:
        line = read_line(console)  # Ctrl-C clears the line; None: Ctrl-D
        if line is None:
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
            ids, _ = sampler.run(draw_noise(sampler.config, 1, rng), temperature)
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
        temperature = check_temperature(sampler, 1.0 if args.temperature is None else args.temperature)
        if args.num_samples is not None:
            for sentence in sampler.sample(args.num_samples, args.seed, temperature):
                sys.stdout.write(sanitize(sentence) + "\n")
            sys.stdout.flush()
            return 0
    except TextgenError as exc:
        _error(err, str(exc))
        return 1
    return interactive(sampler, args.seed, Console(highlight=False), temperature)
