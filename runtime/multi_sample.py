"""Several samples in one run, the same for every front end (runtime and torch, GPT and stack).

A run is a list of prompts, a list of temperatures and `num_samples`: every prompt is continued
`num_samples` times at every temperature. Sequences are numbered prompt first, then temperature,
then sample: sequence `(p * len(temperatures) + t) * num_samples + j`. The rules:

- seeding: sample j (0-based, for each prompt and temperature) draws from
  `numpy.random.default_rng((seed + j) % 2**32)`, so it equals the sample run alone with
  `--seed seed+j`; without a seed every sequence draws fresh entropy;
- batching: the sequences of one prompt share their prompt, so they have the same length at
  every step and run as one batch, one model call per step for all of them
  (runtime/decode.py `decode_batch`); different prompts run one after another, so nothing is
  padded and every row reads exactly what it reads alone;
- stop texts: a sequence ends when its text contains one of them; the text is cut before the
  earliest stop text, and pieces that might begin one are held back until they cannot, so a
  stop text is never streamed. The batch ends when every sequence has.

A generator offers `token_batches(ids, settings, seeds, max_new_tokens)` (one token per row per
step) and a `piece_decoder()` (token ids to text, one per sequence); `sampled` turns those into
`generate`'s result and `run_to_stream` into a command line's output.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TextIO

from runtime.atomic_file import atomic_file, check_target, describe_os_error
from runtime.errors import SamplingError
from runtime.regular_file import read_regular_text
from runtime.sampler import SEED_LIMIT, SamplingSettings, validate_max_new_tokens
from runtime.stop_texts import StopFilter, check_stops
from runtime.terminal_text import sanitize
from runtime.tokenizer import Tokenizer, start_ids

# Rows of one batch: every sequence of a prompt (num_samples x temperatures) at once.
MAX_BATCH = 256

# (prompt ids, one SamplingSettings per row, one seed per row, max_new_tokens) -> token rows
TokenBatches = Callable[[list[int], list[SamplingSettings], list[int | None], int],
                        Iterator[list[int]]]
# a fresh token -> text piece function for one sequence (a decoder may keep state per sequence)
PieceDecoder = Callable[[], Callable[[int], str]]


@dataclass(frozen=True)
class Sample:
    """One sequence of a run: which prompt, temperature and sample number, and its seed."""

    index: int
    prompt_index: int
    prompt: str
    temperature: float
    sample: int
    seed: int | None


def validate_num_samples(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SamplingError(f"--num-samples must be a positive integer, got {value}")
    return value


def plan_samples(prompts: Sequence[str], temperatures: Sequence[float], num_samples: int,
                 seed: int | None) -> list[Sample]:
    validate_num_samples(num_samples)
    if not prompts:
        raise SamplingError("no prompt to continue (an empty list of prompts)")
    if not temperatures:
        raise SamplingError("--temperature needs at least one value")
    rows = len(temperatures) * num_samples
    if rows > MAX_BATCH:
        raise SamplingError(f"--num-samples x the number of temperatures is {rows}; at most "
                            f"{MAX_BATCH} sequences per prompt are sampled at once")
    samples = []
    for p, prompt in enumerate(prompts):
        for temperature in temperatures:
            for j in range(num_samples):
                samples.append(Sample(len(samples), p, prompt, temperature, j,
                                      None if seed is None else (seed + j) % SEED_LIMIT))
    return samples


@dataclass(frozen=True)
class Event:
    """A piece of one sequence's text, or (`end`) that sequence's end."""

    index: int
    piece: str = ""
    end: bool = False
    stopped: bool = False  # with `end`: a stop text ended it


def events(token_batches: TokenBatches, piece_decoder: PieceDecoder,
           groups: Sequence[tuple[list[int], list[Sample]]], base: SamplingSettings,
           max_new_tokens: int, stops: Sequence[str]) -> Iterator[Event]:
    """Each group (a prompt's ids and its samples) as one batch; its pieces as they come."""
    for ids, samples in groups:
        filters = [StopFilter(stops) for _ in samples]
        decoders = [piece_decoder() for _ in samples]  # each sequence decodes its own stream
        rows = token_batches(ids, [replace(base, temperature=s.temperature) for s in samples],
                             [s.seed for s in samples], max_new_tokens)
        try:
            for tokens in rows:
                for sample, text_filter, decoder, token in zip(samples, filters, decoders, tokens,
                                                               strict=True):
                    if text_filter.stopped:
                        continue
                    piece = text_filter.feed(decoder(token))
                    if piece:
                        yield Event(sample.index, piece)
                    if text_filter.stopped:
                        yield Event(sample.index, end=True, stopped=True)
                if all(f.stopped for f in filters):
                    break
        finally:
            close = getattr(rows, "close", None)
            if close is not None:
                close()
        for sample, text_filter in zip(samples, filters, strict=True):
            if not text_filter.stopped:
                rest = text_filter.flush()
                if rest:
                    yield Event(sample.index, rest)
                yield Event(sample.index, end=True)


def prepare(start_ids: Callable[[str], list[int]], prompts: Sequence[str],
            temperatures: Sequence[float], settings: SamplingSettings, num_samples: int,
            seed: int | None) -> tuple[list[Sample], list[tuple[list[int], list[Sample]]]]:
    """The run's samples and its batches; every prompt is encoded here, so a prompt the
    tokenizer refuses fails before any sampling."""
    for temperature in temperatures:
        replace(settings, temperature=temperature)  # each one checked by SamplingSettings
    samples = plan_samples(prompts, temperatures, num_samples, seed)
    ids = [start_ids(prompt) for prompt in prompts]
    groups = [(ids[p], [s for s in samples if s.prompt_index == p]) for p in range(len(prompts))]
    return samples, groups


def sampled(token_batches: TokenBatches, piece_decoder: PieceDecoder,
            start_ids: Callable[[str], list[int]], prompts: str | Sequence[str], *,
            max_new_tokens: int, temperature: float | Sequence[float], top_k: int | None,
            top_p: float | None, repetition_penalty: float, seed: int | None,
            num_samples: int = 1, stop: str | Sequence[str] = ()
            ) -> Iterator[str] | Iterator[tuple[int, str]]:
    """What every `generate(prompts, ...)` returns. One prompt as a `str`, one temperature and
    one sample: the text pieces (today's single-sequence stream). Otherwise `(index, piece)`
    pairs, index numbering the sequences as the module docstring says, in the order sampled
    (the pieces of a batch interleave). Settings, prompts and stop texts are checked at the call."""
    several_temperatures = not isinstance(temperature, (int, float))
    temperatures = list(temperature) if several_temperatures else [temperature]  # type: ignore[arg-type]
    settings = SamplingSettings(temperatures[0] if temperatures else 0.0, top_k, top_p,
                                repetition_penalty)
    validate_max_new_tokens(max_new_tokens)
    single = isinstance(prompts, str)
    prompt_list = [prompts] if single else list(prompts)  # type: ignore[list-item]
    if not all(isinstance(p, str) for p in prompt_list):
        raise SamplingError("prompts must be a str or a list of str")
    stops = check_stops(stop)
    samples, groups = prepare(start_ids, prompt_list, temperatures, settings, num_samples, seed)
    one_stream = single and num_samples == 1 and not several_temperatures
    if one_stream and not stops:  # chat's and the bench's case: no filter, no events between
        return _pieces(token_batches(groups[0][0], [settings], [samples[0].seed],
                                     max_new_tokens), piece_decoder())
    stream = events(token_batches, piece_decoder, groups, settings, max_new_tokens, stops)
    pairs = ((e.index, e.piece) for e in stream if not e.end)
    if one_stream:
        return (piece for _, piece in pairs)
    return pairs


def _pieces(rows: Iterator[list[int]], decoder: Callable[[int], str]) -> Iterator[str]:
    """The non-empty text pieces of a one-sequence run: what `events` yields for it without
    stop texts."""
    for tokens in rows:
        piece = decoder(tokens[0])
        if piece:
            yield piece


class SequenceSampler:
    """The `generate` every sampler of a GPT or a layer stack offers (ONNX or TorchScript file),
    over the subclass's `token_batches` and `tokenizer`."""

    tokenizer: Tokenizer

    def token_batches(self, ids: list[int], settings: list[SamplingSettings],
                      seeds: list[int | None], max_new_tokens: int) -> Iterator[list[int]]:
        raise NotImplementedError

    def generate(
        self,
        prompt: str | list[str],
        max_new_tokens: int = 200,
        temperature: float | Sequence[float] = 0.8,
        top_k: int | None = None,
        top_p: float | None = None,
        repetition_penalty: float = 1.0,
        seed: int | None = None,
        *,
        num_samples: int = 1,
        stop: str | Sequence[str] = (),
    ) -> Iterator[str] | Iterator[tuple[int, str]]:
        """Yield the text of each new token as it is sampled. Settings and the prompt are checked
        here, before the first token, so errors surface at the call.

        One `str` prompt, one temperature, one sample: the pieces of that text. A list of
        prompts, several temperatures or `num_samples` > 1: `(index, piece)` pairs, the
        sequences of each prompt sampled as one batch (this module's docstring says how they
        are numbered and seeded). `stop`: texts that end a sequence (not yielded)."""
        return sampled(self.token_batches, self.piece_decoder,
                       lambda text: start_ids(self.tokenizer, text), prompt,
                       max_new_tokens=max_new_tokens, temperature=temperature, top_k=top_k,
                       top_p=top_p, repetition_penalty=repetition_penalty, seed=seed,
                       num_samples=num_samples, stop=stop)

    def piece_decoder(self) -> Callable[[int], str]:
        """Token id -> text piece, for one sequence: never half a character or word piece."""
        return self.tokenizer.piece_decoder()


# --- the command-line side: the flags both front ends take, stdout labels, JSON lines ---

def add_batch_flags(parser: Any) -> None:
    """--num-samples, --prompt-file, --output and --stop (each front end adds --temperature
    with nargs='+' itself)."""
    parser.add_argument("--prompt-file", metavar="F",
                        help="continue every line of F (utf-8; blank lines skipped) instead of "
                             "--prompt")
    parser.add_argument("--output", metavar="F",
                        help="also write every sample to F as JSON lines (text and settings)")
    parser.add_argument("--stop", action="append", default=[], metavar="TEXT",
                        help="end a sample when its text contains TEXT (not printed; repeatable; "
                             "\\n, \\t and \\\\ are a newline, a tab and a backslash)")


_ESCAPES = {"n": "\n", "t": "\t", "\\": "\\"}


def stops_of(args: Any) -> list[str]:
    """The --stop texts with \\n, \\t and \\\\ read as a newline, a tab and a backslash (a shell
    cannot easily pass a newline); any other backslash stays as it is."""
    stops = []
    for text in args.stop:
        out, i = [], 0
        while i < len(text):
            if text[i] == "\\" and i + 1 < len(text) and text[i + 1] in _ESCAPES:
                out.append(_ESCAPES[text[i + 1]])
                i += 2
            else:
                out.append(text[i])
                i += 1
        stops.append("".join(out))
    return check_stops(stops)


PROMPT_FILE_LIMIT = 16 << 20  # bytes; the chat's own bound is a 1 MB paste per prompt


def read_prompt_file(path: str) -> list[str]:
    """One prompt per line; blank lines are skipped; a line's own newline is not part of it."""
    try:
        text = read_regular_text(path, PROMPT_FILE_LIMIT)
    except UnicodeDecodeError:
        raise SamplingError(f"--prompt-file {path}: not utf-8 text") from None
    except OSError as exc:
        raise SamplingError(f"--prompt-file {path}: cannot read it ({describe_os_error(exc)})") from None
    prompts = [line for line in text.splitlines() if line.strip()]
    if not prompts:
        raise SamplingError(f"--prompt-file {path}: no prompt in it (every line is blank)")
    return prompts


def check_output(path: str | None) -> None:
    if path is None:
        return
    target = Path(path)
    if target.is_dir() or not target.parent.is_dir():
        raise SamplingError(f"--output {path}: not a file in an existing folder")
    try:
        check_target(target)  # a link or a device there is refused before sampling, not after
    except OSError as exc:
        raise SamplingError(f"--output {path}: cannot write it ({describe_os_error(exc)})") from None


def record(sample: Sample, text: str, stopped: bool, settings: SamplingSettings,
           max_new_tokens: int, stops: Sequence[str], model: str) -> dict[str, Any]:
    """One JSON line: the sample's text (the continuation, without the prompt) and its settings."""
    return {"index": sample.index, "prompt": sample.prompt, "text": text,
            "temperature": sample.temperature, "top_k": settings.top_k, "top_p": settings.top_p,
            "repetition_penalty": settings.repetition_penalty, "max_new_tokens": max_new_tokens,
            "seed": sample.seed, "sample": sample.sample, "stop": list(stops),
            "stopped": stopped, "model": model}


def write_records(path: str, records: Sequence[dict[str, Any]]) -> None:
    try:
        with atomic_file(path) as f:
            for line in records:
                f.write((json.dumps(line, ensure_ascii=False) + "\n").encode("utf-8"))
    except OSError as exc:
        raise SamplingError(f"--output {path}: cannot write it ({describe_os_error(exc)})") from None


class Printer:
    """Samples on a text stream in index order: the earliest unfinished one streams as it is
    sampled, the others are held and written when their turn comes. With several samples each
    starts with a label line naming its prompt, temperature and seed."""

    def __init__(self, out: TextIO, samples: Sequence[Sample], show_prompt: bool) -> None:
        self.out, self.samples, self.show_prompt = out, list(samples), show_prompt
        self.labelled = len(self.samples) > 1
        self.texts: dict[int, list[str]] = {s.index: [] for s in self.samples}
        self.stopped: dict[int, bool] = {}
        self.current = 0
        self._open(0)

    def _open(self, index: int) -> None:
        if index >= len(self.samples):
            return
        sample = self.samples[index]
        if self.labelled:
            seed = sample.seed if sample.seed is not None else "random"
            self.out.write(f"=== sample {index + 1}/{len(self.samples)}: prompt "
                           f"{sample.prompt_index + 1}, temperature {sample.temperature}, "
                           f"seed {seed} ===\n")
        if self.show_prompt:
            self.out.write(sanitize(sample.prompt))
        self.out.write(sanitize("".join(self.texts[index])))
        self.out.flush()

    def take(self, event: Event) -> None:
        if event.end:
            self.stopped[event.index] = event.stopped
            while self.current in self.stopped:
                self.out.write("\n")
                self.current += 1
                self._open(self.current)
            return
        self.texts[event.index].append(event.piece)
        if event.index == self.current:
            self.out.write(sanitize(event.piece))
            self.out.flush()

    def text(self, index: int) -> str:
        return "".join(self.texts[index])


def run_to_stream(token_batches: TokenBatches, piece_decoder: PieceDecoder,
                  start_ids: Callable[[str], list[int]], out: TextIO, *, prompts: Sequence[str],
                  temperatures: Sequence[float], settings: SamplingSettings, num_samples: int,
                  seed: int | None, max_new_tokens: int, stops: Sequence[str], show_prompt: bool,
                  output: str | None, model: str) -> list[str]:
    """A command line's run: every sample on `out` (Printer), the JSON lines to `output` once
    the run ends; returns the samples' texts in index order."""
    check_output(output)
    samples, groups = prepare(start_ids, prompts, temperatures, settings, num_samples, seed)
    printer = Printer(out, samples, show_prompt)
    for event in events(token_batches, piece_decoder, groups, settings, max_new_tokens, stops):
        printer.take(event)
    texts = [printer.text(s.index) for s in samples]
    if output is not None:
        write_records(output, [record(s, texts[s.index], printer.stopped.get(s.index, False),
                                      settings, max_new_tokens, stops, model) for s in samples])
    return texts


def narrow_for_gan(args: Any) -> None:
    """Before a GAN front end reads the parsed flags: refuse the options only text samplers
    take, and turn `--temperature` back into one value (or None) as the GAN's checks expect."""
    for flag, given in (("--prompt-file", args.prompt_file), ("--output", args.output),
                        ("--stop", args.stop),
                        ("--max-new-tokens", getattr(args, "max_new_tokens", None) is not None),
                        ("--repetition-penalty", getattr(args, "repetition_penalty", 1.0) != 1.0),
                        ("--markup", getattr(args, "markup", None) is not None)):
        if given:  # a GAN draws whole sentences of its trained length from noise
            raise SamplingError(f"{flag} is for GPT and stack models; a GAN writes sentences "
                                "with --num-samples N")
    if args.temperature is not None and len(args.temperature) > 1:
        raise SamplingError("several temperatures are for GPT and stack models; leave them out "
                            "for a GAN")
    args.temperature = None if args.temperature is None else args.temperature[0]


def prompts_of(args: Any, default: str | None) -> list[str] | None:
    """The run's prompts from --prompt or --prompt-file (never both); `default` without either."""
    if args.prompt is not None and args.prompt_file is not None:
        raise SamplingError("give --prompt TEXT or --prompt-file F, not both")
    if args.prompt_file is not None:
        return read_prompt_file(args.prompt_file)
    prompt = default if args.prompt is None else args.prompt
    return None if prompt is None else [prompt]


def is_batch_run(args: Any) -> bool:
    """Whether the flags ask for the several-sample run (labelled only with several samples)."""
    return bool(args.prompt_file is not None or args.output is not None or args.stop
                or args.num_samples is not None or len(args.temperature or ()) > 1)
