"""`python -m textgen_core.train`: train a model of any family and write a checkpoint.

No arguments: a char GPT on the built-in `shakespeare` corpus with the preset that suits the
device (`cpu` on a CPU, `baby` on a GPU), written to models/gpt.pt.

One parser for every family. `--model` (or `model = "..."` in the --config file) picks it: gpt
(training/gpt_run.py), gan (training/gan_run.py) or stack (training/stack_run.py). The shared
flags mean the same for all; a flag that belongs to another family is a one-line error. Then,
whichever the family: the config file is read once (preset < config file < flags), Project
Gutenberg books are fetched from the chosen mirror, the run holds its --out (training/run_lock.py),
trains, and prints one summary line.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from runtime.command_line import Parser
from runtime.file_kind import CHECKPOINT, TAKES_CHECKPOINT, TAKES_TEXT, explained, sniff
from runtime.terminal_text import plain
from runtime.tokenizer import KINDS
from runtime.yoke_spec import FORMAT as YOKE_FORMAT
from textgen_core.data.corpus import BUILTIN_CORPORA, resolve_corpus
from textgen_core.data.gutenberg import is_gutenberg_spec
from textgen_core.data.gutenberg_catalogue import with_max_books
from textgen_core.data.tokenizers import NEW_TOKENS
from textgen_core.errors import ConfigError
from textgen_core.models.gpt import POSITIONS, GPTConfig
from textgen_core.training import gan_run, gpt_run, stack_run
from textgen_core.training.cli_outcome import EXIT_INTERRUPTED, exit_code, print_summary
from textgen_core.training.config import COMPILE_MODES, DEVICES, DTYPE_CHOICES, OPTIMIZERS, TrainConfig
from textgen_core.training.flags import flag_list
from textgen_core.training.gan import train_gan
from textgen_core.training.gpt import train_gpt
from textgen_core.training.log_mirrors import LOGGERS
from textgen_core.training.loop import resume_command
from textgen_core.training.run_config import RUN_KEYS, RunRequest, Settings, merge, read_toml, split_settings
from textgen_core.training.run_lock import hold_out
from textgen_core.training.stack import train_stack


@dataclass(frozen=True)
class Family:
    """What the command line needs to know of a model family; everything else is shared."""

    model_fields: tuple[str, ...]
    train_fields: tuple[str, ...]
    field_types: dict[str, dict[str, type]]
    run_keys: tuple[str, ...]  # the run keys it takes beyond the shared ones
    build_spec: Callable[[RunRequest, list[str]], Any]
    train: Callable[[Any], Any]
    summary: Callable[[Path, Any], int]


TOKENIZER_KEYS = ("tokenizer", "vocab_size", "new_tokens")  # the GPT's and the stack's; the GAN's
# vocab_size is a model field
FAMILIES = {
    "gpt": Family(gpt_run.MODEL_FIELDS, gpt_run.TRAIN_FIELDS, gpt_run.FIELD_TYPES, TOKENIZER_KEYS,
                  lambda request, notes: gpt_run.build_spec(request), train_gpt, print_summary),
    "gan": Family(gan_run.MODEL_FIELDS, gan_run.TRAIN_FIELDS, gan_run.FIELD_TYPES, (),
                  lambda request, notes: gan_run.build_spec(request), train_gan, gan_run.summary),
    "stack": Family(stack_run.MODEL_FIELDS, stack_run.TRAIN_FIELDS, stack_run.FIELD_TYPES,
                    ("layers", *TOKENIZER_KEYS),
                    stack_run.build_spec, train_stack, print_summary),
}
SHARED_RUN_KEYS = RUN_KEYS  # preset, corpus, encoding, out, device, compile, model, mirror, max_books,
# time_budget


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="python -m textgen_core.train",
        description="Train a text-generation model and write a checkpoint. Flags of one model family "
                    "given to another are refused.",
    )
    parser.add_argument("--model", choices=list(FAMILIES), default=None,
                        help="model family: gpt (default), gan (docs/gan.md), stack "
                             "(docs/layer-stack.md); or `model` in the --config file")
    parser.add_argument("--corpus", metavar="SPEC",
                        help="'shakespeare' (default), 'fortunes', a .txt file or a folder of "
                             "them, gutenberg:ID,..., a catalogue search "
                             "gutenberg:FIELD=VALUE,..., women-writers, philosophers")
    parser.add_argument("--encoding", metavar="NAME",
                        help="text encoding of the corpus files (default utf-8)")
    parser.add_argument("--max-books", dest="max_books", type=int, metavar="N",
                        help="cap a gutenberg:FIELD=VALUE search at N books (default 20)")
    parser.add_argument("--gutenberg-mirror", dest="gutenberg_mirror", metavar="URL",
                        help="Project Gutenberg mirror for gutenberg:IDS and the named collections "
                             "(default $TEXTGEN_GUTENBERG_MIRROR, else https://www.gutenberg.org/)")
    parser.add_argument("--out", metavar="FILE.pt", help="checkpoint path (default models/<model>.pt)")
    parser.add_argument("--preset", metavar="NAME",
                        help="named settings: gpt: cpu, cpu-bpe (cpu over bpe 2048), baby, fast, nano "
                             "(default: by device); "
                             "gan and stack: nano")
    parser.add_argument("--config", metavar="FILE.toml",
                        help="TOML file of settings ([model], [train] tables)")
    parser.add_argument("--resume", action="store_true", help="continue the run saved at --out")
    parser.add_argument("--init-from", metavar="CKPT", help="fine-tune from this checkpoint")
    parser.add_argument("--tokenizer", metavar="|".join(KINDS), default=None,
                        help="gpt and stack: char (default), word or bpe (see the README's Tokenizers)")
    parser.add_argument("--new-tokens", dest="new_tokens", metavar="|".join(NEW_TOKENS), default=None,
                        help="with --init-from, characters the checkpoint's char or word tokenizer "
                             "lacks: extend (new embedding rows) or unk (one <unk> token)")
    parser.add_argument("--overwrite", action="store_true",
                        help="allow a fresh run to replace an existing checkpoint at --out")
    parser.add_argument("--time-budget", dest="time_budget", type=float, metavar="MINUTES",
                        help="any family: train for this many minutes of wall clock, the "
                             "warmup, decay, evaluations and checkpoints planned to end on time, "
                             "then a final evaluation and save; --max-iters, if given, caps the "
                             "steps (default: off, a run of --max-iters steps)")
    parser.add_argument("--log", type=_loggers, action="extend", metavar="|".join(LOGGERS),
                        help="also write the metrics log's figures for TensorBoard "
                             "(<out>.tensorboard/) or Weights & Biases (offline, <out>.wandb/); "
                             "a comma list or repeated (needs: pip install 'textgen[log]')")
    parser.add_argument("--device", choices=DEVICES, help="default auto: cuda, then mps, then cpu")
    parser.add_argument("--compile", choices=COMPILE_MODES,
                        help="torch.compile: auto = on for CUDA/MPS, off on CPU")
    model_group = parser.add_argument_group("model shape (override the preset; gpt, and the ones "
                                            "a gan or stack shares)")
    defaults = GPTConfig()
    for name in gpt_run.MODEL_FIELDS:
        _add_field(model_group, name, getattr(defaults, name))
    train_group = parser.add_argument_group("training (override the preset)")
    train_defaults = TrainConfig()
    for name in gpt_run.TRAIN_FIELDS:
        _add_field(train_group, name, getattr(train_defaults, name))
    gan_run.add_arguments(parser)
    stack_run.add_arguments(parser)
    return parser


def _loggers(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in LOGGERS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"{text!r}: choose from {', '.join(LOGGERS)}")
    return names


def _add_field(group: argparse._ArgumentGroup, name: str, default: object) -> None:
    flag = "--" + name.replace("_", "-")
    text = f"{FIELD_HELP[name]} (default: the preset's, else {default})" if name in FIELD_HELP else None
    if isinstance(default, bool):
        group.add_argument(flag, dest=name, action=argparse.BooleanOptionalAction, default=None,
                           help=text)
    elif name == "yoke":
        group.add_argument(flag, dest=name, type=str, default=None, metavar=YOKE_FORMAT,
                           help="narrow block LAYER's feed-forward to HIDDEN units (docs/yoke.md)")
    elif name == "dtype":
        group.add_argument(flag, dest=name, choices=DTYPE_CHOICES, default=None,
                           help="what a GPT training step computes in: auto (default) measures "
                                "fp32 against bf16 on a CPU, once per machine and shape")
    elif name == "positions":
        group.add_argument(flag, dest=name, choices=POSITIONS, default=None,
                           help="rotary (default; the cache slides without re-reading) or "
                                "learned (nanoGPT's absolute embeddings)")
    elif name == "optimizer":
        group.add_argument(flag, dest=name, choices=OPTIMIZERS, default=None, help=text)
    else:
        group.add_argument(flag, dest=name, type=type(default), default=None, help=text)


_MODE_DESTS = ("config", "resume", "init_from", "overwrite", "log")

# What each model and training field means on the command line; the default shown is the
# field's own, which a preset (and the config file) overrides.
FIELD_HELP = {
    "block_size": "context length in tokens",
    "n_layer": "transformer blocks",
    "n_head": "attention heads per block",
    "n_embd": "embedding width",
    "dropout": "dropout probability, in [0, 1)",
    "bias": "biases in the linear and norm layers",
    "batch_size": "sequences per optimizer step (per process)",
    "gradient_accumulation_steps": "micro-batches summed into one optimizer step",
    "max_iters": "optimizer steps of the run",
    "learning_rate": "peak learning rate (after warmup)",
    "min_lr": "learning rate at the end of the cosine decay",
    "warmup_iters": "steps of linear warmup",
    "lr_decay_iters": "steps of cosine decay (0: until --max-iters)",
    "weight_decay": "AdamW weight decay (matrices only)",
    "beta1": "AdamW beta1, in [0, 1)",
    "beta2": "AdamW beta2, in [0, 1)",
    "grad_clip": "clip the gradient norm to this (0: off)",
    "eval_interval": "steps between evaluations (validation loss, a sample, the plot)",
    "eval_iters": "batches per loss estimate",
    "checkpoint_interval": "steps between checkpoints",
    "log_interval": "steps between progress and metrics-log lines",
    "sample_tokens": "tokens of the sample printed at each evaluation (0: none)",
    "seed": "seeds model init, batches and dropout",
    "yoke_windows": "stateful yoke: consecutive windows per stream before it restarts",
    "optimizer": "adamw, or muon (Muon on hidden matrices at --muon-lr, AdamW on the rest)",
    "muon_lr": "Muon's learning rate (--optimizer muon)",
}


def build_request(args: argparse.Namespace) -> tuple[str, RunRequest]:
    """The family and what the command line and config file ask of it, checked against it."""
    data = read_toml(args.config) if args.config else {}
    file_model = data.get("model") if not isinstance(data.get("model"), dict) else None
    loaded: dict[str, dict[str, Any]] = {}
    given = {k: v for k, v in vars(args).items() if v is not None and k not in _MODE_DESTS}
    # Never guessed from a checkpoint: `--init-from gan.pt` without --model is a GPT command that
    # is refused for the checkpoint's kind, not a GAN run.
    name = args.model or file_model or "gpt"
    if name not in FAMILIES:
        raise ConfigError(f"--config {args.config}: model {name!r} is unknown; choose from: "
                          f"{', '.join(FAMILIES)}")
    family = FAMILIES[name]
    foreign = _foreign(given, name)
    if foreign:
        raise ConfigError(f"{flag_list(foreign)} do(es) not apply to --model {name}")
    file = (split_settings(data, args.config, (*SHARED_RUN_KEYS, *family.run_keys), family.field_types)
            if args.config else Settings({}, {}, {}))
    flags_run = {k: given[k] for k in (*SHARED_RUN_KEYS, *family.run_keys) if k in given}
    run = merge(file.run, flags_run)
    if run.get("max_books") is not None:  # the cap is part of the recorded corpus spec
        run["corpus"] = with_max_books(run.get("corpus"), run.pop("max_books"))
    request = RunRequest(
        family=name, run=run,
        model=merge(file.model, {k: given[k] for k in family.model_fields if k in given}),
        train=merge(file.train, {k: given[k] for k in family.train_fields if k in given}),
        resume=args.resume, init_from=args.init_from, overwrite=args.overwrite, loaded=loaded,
    )
    return name, request


def _foreign(given: dict[str, Any], name: str) -> list[str]:
    """The given settings that family `name` does not take (a False switch is not "given")."""
    family = FAMILIES[name]
    own = {*SHARED_RUN_KEYS, *family.run_keys, *family.model_fields, *family.train_fields}
    return sorted(k for k, v in given.items() if k not in own and not (isinstance(v, bool) and not v))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else list(argv))
    console = Console(stderr=True)

    def run() -> int:
        # A model or a text file where the other is wanted: say what it is and what takes it.
        with explained((args.config, TAKES_TEXT), (args.layers, TAKES_TEXT),
                       (args.init_from, TAKES_CHECKPOINT),
                       (args.out if args.resume or not args.overwrite else None, TAKES_CHECKPOINT)):
            try:
                return _train(args, console)
            except KeyboardInterrupt:  # before the loop took Ctrl-C over, or a second Ctrl-C
                family = args.model or "gpt"
                out = Path(args.out or f"models/{family}.pt")
                if sniff(out) != CHECKPOINT:
                    raise
                console.print(plain(f"interrupted; the last saved checkpoint {out} is intact; continue "
                                    f"with `{resume_command(out, family)}`", style="yellow"))
                return EXIT_INTERRUPTED

    return exit_code(console, run)


def _train(args: argparse.Namespace, console: Console) -> int:
    name, request = build_request(args)
    family = FAMILIES[name]
    notes: list[str] = []
    corpus = request.run.get("corpus")
    if isinstance(corpus, str) and corpus not in BUILTIN_CORPORA and not is_gutenberg_spec(corpus):
        # A mistyped corpus path is said before anything about --out.
        resolve_corpus(corpus, request.run.get("encoding"))
    spec = family.build_spec(request, notes)
    spec.log = tuple(args.log or ())
    for note in notes:
        console.print(plain(f"note: {note}", style="yellow"))
    if is_gutenberg_spec(spec.corpus):
        # Fetch missing books now, from the chosen mirror; training then reads the cache.
        resolve_corpus(spec.corpus, spec.encoding, gutenberg_mirror=request.run.get("gutenberg_mirror"))
    with hold_out(spec.out, fresh=spec.resume_from is None, overwrite=request.overwrite):
        result = family.train(spec)
    if not result.is_main:
        return EXIT_INTERRUPTED if result.interrupted else 0
    return family.summary(spec.out, result)


if __name__ == "__main__":
    sys.exit(main())
