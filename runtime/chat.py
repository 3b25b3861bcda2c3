"""`python -m runtime.chat`: sample from an exported model in the terminal.

With `--prompt TEXT` it prints the continuation (without the prompt) as plain text and exits
(scripts, tests, pipes; `textgen_core.sample` prints the prompt too). `--prompt-file`,
`--num-samples`, several `--temperature`s, `--stop` and `--output` make it a run of several
samples, each prompt's sampled as one batch (runtime/multi_sample.py).
Without it, an interactive session: each line you type is continued by the model, streamed as it
is sampled; the session's text so far is the model's context (slid to its window), so the story
goes on across turns until `/reset`. The prompt line edits and keeps its history with readline
where the platform has it (runtime/line_editing.py); Ctrl-C stops a reply while it streams and
clears the line at the prompt; Ctrl-D or /quit ends the session.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from rich.console import Console
from rich.panel import Panel
from rich.text import Text

from runtime.command_line import Parser, add_echo, add_temperature
from runtime.errors import ModelFileError, SamplingError, TextgenError
from runtime.file_kind import TAKES_MODEL, TAKES_TEXT, missing_model, wrong_kind
from runtime.gan import file_kind, gan_main
from runtime.gpt import TextGenerator
from runtime.line_editing import read_line
from runtime.markup.copy_index import DEFAULT_MIN_RUN, CopyIndex, validate_min_run
from runtime.markup.render import terminal_legend, to_terminal
from runtime.markup.sources import load_index
from runtime.multi_sample import (
    add_batch_flags,
    is_batch_run,
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
from runtime.torchscript_trust import open_trusted

# --temperature when none is given; it is left None in the parsed flags, since a GAN's default is 1
DEFAULT_TEMPERATURE = SamplingSettings().temperature

HELP = """commands:
  /temp X        sampling temperature (0 = greedy)      /topk N    keep the N likeliest (0 = off)
  /topp P        nucleus sampling, P in (0, 1]          /rep X     repetition penalty (1 = off)
  /max N         tokens per reply                       /seed N    fix the random seed (/seed off)
  /history       show this session                      /reset     forget the session
  /help          this text                              /quit      leave (also /exit, Ctrl-D)
Up and Down recall earlier lines; Ctrl-C clears the line, or stops a reply while it streams."""


@dataclass
class Session:
    settings: SamplingSettings
    max_new_tokens: int
    seed: int | None
    turns: list[tuple[str, str]] = field(default_factory=list)
    markup: CopyIndex | None = None  # colour copied passages of each reply (--markup)
    min_run: int = DEFAULT_MIN_RUN

    def context(self) -> str:
        return "".join(prompt + reply for prompt, reply in self.turns)


def open_model(path: Path, threads: int | None, trust_torchscript: bool) -> TextGenerator:
    """The generator for a GPT or stack file: the ONNX runtime for .onnx files; for TorchScript
    (.ts from `export torchscript`), only with the trust flag since loading one executes code
    from the file, the torch-side generator its header's kind names (GAN files go to
    runtime/gan.py)."""
    if path.suffix == ".ts":
        return open_trusted(path, trust_torchscript, kinds=("gpt", "stack"))
    if file_kind(path) == "stack":  # a layer stack: the same generate() API
        from runtime.stack import StackGenerator

        return StackGenerator(path, threads=threads)  # type: ignore[return-value]
    return TextGenerator(path, threads=threads)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="python -m runtime.chat",
                    description="Sample text from an exported textgen model.")
    parser.add_argument("--model", default="models/gpt.onnx", metavar="MODEL.onnx",
                        help="ONNX file from `python -m export onnx` (or a .ts file with "
                             "--trust-torchscript) (default %(default)s)")
    parser.add_argument("--prompt", metavar="TEXT",
                        help="continue this text once, print it as plain text and exit (the "
                             "continuation only; the prompt too with --echo)")
    add_echo(parser)
    add_temperature(parser, f"0 = greedy (default {DEFAULT_TEMPERATURE}; a GAN's default 1); "
                            "a comma list 0.5,1.0 (or the flag repeated) with --prompt: each prompt "
                            "sampled at each")
    parser.add_argument("--top-k", type=int, default=None,
                        help="keep the k likeliest tokens (default: all)")
    parser.add_argument("--top-p", type=float, default=None,
                        help="nucleus sampling, in (0, 1] (default: off)")
    parser.add_argument("--repetition-penalty", type=float, default=1.0, help="1 = off")
    parser.add_argument("--max-new-tokens", type=int, default=None,
                        help=f"tokens per reply (default {DEFAULT_MAX_NEW_TOKENS})")
    parser.add_argument("--seed", type=int, default=None, help="same seed, same text (default: random)")
    parser.add_argument("--num-samples", type=int, default=None, metavar="N",
                        help="with --prompt: N samples of each prompt and temperature, sampled as "
                             "one batch; GAN models: print N sentences and exit (Enter gives one "
                             "interactively)")
    add_batch_flags(parser)
    parser.add_argument("--threads", type=int, default=None,
                        help="onnxruntime intra-op threads (default: onnxruntime's choice)")
    parser.add_argument("--markup", metavar="CORPUS",
                        help="colour passages of each reply copied verbatim from CORPUS (a .txt "
                             "file, a folder, shakespeare, fortunes or gutenberg:IDS once downloaded)")
    parser.add_argument("--min-run", type=int, default=DEFAULT_MIN_RUN, metavar="N",
                        help="shortest copied passage --markup colours (default %(default)s)")
    parser.add_argument("--trust-torchscript", action="store_true",
                        help="allow a .ts model: TorchScript files run code when loaded (needs torch)")
    return parser


def _error(console: Console, message: str) -> None:
    print_error(message, console)


def one_shot(generator: TextGenerator, prompt: str, session: Session, echo: bool = False) -> int:
    s = session.settings
    pieces = generator.generate(prompt, session.max_new_tokens, s.temperature, s.top_k, s.top_p,
                                s.repetition_penalty, session.seed)
    if session.markup is not None:
        # Coloured once finished (plain text when stdout is not a terminal); the summary on stderr.
        marked = session.markup.mark("".join(pieces), session.min_run)
        Console(highlight=False).print(to_terminal(marked), soft_wrap=True)
        Console(stderr=True, highlight=False).print(terminal_legend(marked), soft_wrap=True)
        return 0
    out = sys.stdout
    if echo:
        out.write(sanitize(prompt))
    for piece in pieces:
        out.write(sanitize(piece))
        out.flush()
    out.write("\n")
    out.flush()
    return 0


def batch_shot(generator: TextGenerator, args: argparse.Namespace, temperatures: list[float],
               session: Session) -> int:
    """Several samples (runtime/multi_sample.py): the continuations only, each labelled when
    there are several; `--output` JSON lines."""
    if not hasattr(generator, "token_batches"):
        raise SamplingError(f"{args.model}: --num-samples, --prompt-file, --output, --stop and "
                            "several temperatures sample .onnx files; export one with "
                            "`python -m export onnx`")
    if args.markup is not None:
        raise SamplingError("--markup colours one reply; leave it out with --num-samples, "
                            "--prompt-file, --output, --stop or several temperatures")
    prompts = prompts_of(args, None)
    assert prompts is not None  # a one-shot run has --prompt or --prompt-file
    run_to_stream(generator.token_batches, generator.piece_decoder,
                  lambda text: start_ids(generator.tokenizer, text), sys.stdout,
                  prompts=prompts, temperatures=temperatures, settings=session.settings,
                  num_samples=validate_num_samples(1 if args.num_samples is None else args.num_samples),
                  seed=session.seed,
                  max_new_tokens=session.max_new_tokens, stops=stops_of(args),
                  show_prompt=args.echo, output=args.output, model=str(args.model))
    return 0


def _header(generator: TextGenerator, path: str, session: Session) -> Panel:
    c = generator.config
    s = session.settings
    body = Text.assemble(  # the path and the file's config values, filtered
        (sanitize(f"{path}\n"), "bold"),
        sanitize(f"{c.get('n_layer')} layers x {c.get('n_embd')} wide, context {generator.block_size}, "
                 f"{generator.vocab_size} tokens\n"),
        f"temperature {s.temperature}, top-k {s.top_k or 'off'}, top-p {s.top_p or 'off'}, "
        f"repetition penalty {s.repetition_penalty}, {session.max_new_tokens} tokens per reply, "
        f"seed {session.seed if session.seed is not None else 'random'}\n",
        ("type text to continue it; /help for commands; Ctrl-C stops a reply or clears the line; "
         "Ctrl-D leaves", "dim"),
    )
    return Panel(body, title="textgen chat", title_align="left")


def _command(line: str, session: Session, console: Console) -> bool:
    """Apply a /command; returns False when the session should end."""
    name, _, arg = line[1:].strip().partition(" ")
    arg = arg.strip()
    s = session.settings
    try:
        if name in ("quit", "exit", "q"):
            return False
        if name == "help":
            console.print(HELP, highlight=False, markup=False)
        elif name == "history":
            if not session.turns:
                console.print("(empty)", style="dim")
            for prompt, reply in session.turns:
                console.print(Text.assemble((sanitize(prompt), "bold"), sanitize(reply)))
        elif name == "reset":
            session.turns.clear()
            console.print("session cleared", style="dim")
        elif name in ("temp", "temperature"):
            session.settings = replace(s, temperature=float(arg))
            console.print(f"temperature set to {session.settings.temperature}", style="dim")
        elif name in ("topk", "top-k"):
            session.settings = replace(s, top_k=int(arg) or None)
            console.print(f"top-k set to {session.settings.top_k or 'off'}", style="dim")
        elif name in ("topp", "top-p"):
            session.settings = replace(s, top_p=float(arg))
            console.print(f"top-p set to {session.settings.top_p}", style="dim")
        elif name in ("rep", "repetition-penalty"):
            session.settings = replace(s, repetition_penalty=float(arg))
            console.print(f"repetition penalty set to {session.settings.repetition_penalty}", style="dim")
        elif name == "max":
            session.max_new_tokens = validate_max_new_tokens(int(arg))
            console.print(f"{session.max_new_tokens} tokens per reply", style="dim")
        elif name == "seed":
            session.seed = None if arg in ("", "off") else validate_seed(int(arg), "/seed")
            shown = session.seed if session.seed is not None else "random"
            console.print(f"seed set to {shown}", style="dim")
        else:
            _error(console, f"unknown command /{name}; /help lists them")
    except ValueError:
        _error(console, f"/{name} needs a number, got {arg!r}")
    except SamplingError as exc:
        _error(console, str(exc))
    return True


def _reply(generator: TextGenerator, prompt: str, session: Session, console: Console) -> None:
    s = session.settings
    context = session.context() + prompt
    try:
        pieces = generator.generate(context, session.max_new_tokens, s.temperature, s.top_k,
                                    s.top_p, s.repetition_penalty, session.seed)
    except TextgenError as exc:
        _error(console, str(exc))
        return
    reply: list[str] = []
    started = time.perf_counter()
    stopped = False
    try:
        for piece in pieces:
            reply.append(piece)
            console.file.write(sanitize(piece))
            console.file.flush()
    except KeyboardInterrupt:
        stopped = True
    except TextgenError as exc:  # the graph failed mid-reply (runtime/onnx_file.py CheckedSession)
        console.file.write("\n")
        _error(console, str(exc))
        return
    elapsed = time.perf_counter() - started
    console.file.write("\n")
    rate = len(reply) / elapsed if elapsed > 0 else 0.0
    status = f"{len(reply)} tokens, {rate:.1f} tok/s, {elapsed:.2f} s"
    console.print(Text(status + (" (stopped)" if stopped else ""), style="dim"))
    if session.markup is not None and reply:
        marked = session.markup.mark("".join(reply), session.min_run)
        console.print(to_terminal(marked), soft_wrap=True)
        console.print(terminal_legend(marked), soft_wrap=True)
    session.turns.append((prompt, "".join(reply)))


def interactive(generator: TextGenerator, path: str, session: Session, console: Console) -> int:
    # Ctrl-C must stop a reply even when the parent started us with SIGINT ignored (a background
    # job of a non-interactive shell), where Python would install no KeyboardInterrupt handler.
    with contextlib.suppress(ValueError):
        signal.signal(signal.SIGINT, signal.default_int_handler)
    console.print(_header(generator, path, session))
    while True:
        line = read_line(console)  # Ctrl-C clears the line; None: Ctrl-D
        if line is None:
            return 0
        if not line.strip():
            continue
        if line.startswith("/"):
            if not _command(line, session, console):
                return 0
            continue
        try:
            _reply(generator, line, session, console)
        except KeyboardInterrupt:  # Ctrl-C just before streaming began or just after it ended
            console.print(Text("(stopped)", style="dim"))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    err = Console(stderr=True)
    # A checkpoint, a corpus or a genai folder given for a file this command opens: say what it is.
    for path, takes in ((args.model, TAKES_MODEL), (args.prompt_file, TAKES_TEXT),
                        (args.markup, TAKES_TEXT)):
        problem = None if path is None else wrong_kind(path, takes)
        if problem is not None:
            _error(err, problem)
            return 1
    one_shot_run = args.prompt is not None or args.prompt_file is not None
    # runtime/gan.py: a GAN file, or --num-samples without a prompt (sentences from a GAN)
    if file_kind(args.model) == "gan" or (args.num_samples is not None and not one_shot_run):
        try:
            narrow_for_gan(args)
        except TextgenError as exc:
            _error(err, str(exc))
            return 1
        return gan_main(args)
    # Undecodable input bytes become U+FFFD, which the tokenizer then names, instead of a crash.
    if hasattr(sys.stdin, "reconfigure"):
        sys.stdin.reconfigure(errors="replace")
    try:
        temperatures = [DEFAULT_TEMPERATURE] if args.temperature is None else args.temperature
        session = Session(
            SamplingSettings(temperatures[0], args.top_k, args.top_p, args.repetition_penalty),
            validate_max_new_tokens(DEFAULT_MAX_NEW_TOKENS if args.max_new_tokens is None
                                    else args.max_new_tokens), validate_seed(args.seed),
        )
        if args.threads is not None and args.threads < 1:
            raise SamplingError(f"--threads must be a positive integer, got {args.threads}")
        batch_run = is_batch_run(args)
        if batch_run and not one_shot_run:
            raise SamplingError("--num-samples, --prompt-file, --output, --stop and several "
                                "temperatures are for one-shot runs: add --prompt TEXT")
        try:
            generator = open_model(Path(args.model), args.threads, args.trust_torchscript)
        except ModelFileError as exc:  # missing: export it, or train one first; a folder: its files
            raise ModelFileError(missing_model(args.model) or str(exc)) from None
        if batch_run:
            return batch_shot(generator, args, temperatures, session)
        if args.markup is not None:
            session.min_run = validate_min_run(args.min_run)
            session.markup = load_index(args.markup)
        if args.prompt is not None:
            return one_shot(generator, args.prompt, session, echo=args.echo)
    except TextgenError as exc:
        _error(err, str(exc))
        return 1
    except KeyboardInterrupt:
        return 130
    return interactive(generator, args.model, session, Console(highlight=False))


if __name__ == "__main__":
    raise SystemExit(main())
