"""`python -m textgen_core.train --model stack --layers FILE.toml`: train a layer stack.

`textgen_core.train` hands every command line that selects `--model stack` to `main` here, since
the stack's settings (layers file, plateau rule) differ from the GPT's. Precedence: the dataclass
defaults < the layers file's [model]/[train] tables < flags. `--resume` and `--init-from` take the
layers from the checkpoint and ignore `--layers`.
"""

from __future__ import annotations

import argparse
from dataclasses import fields
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.text import Text

from textgen_core.errors import ConfigError
from textgen_core.models.stack.loading import stack_from_checkpoint
from textgen_core.models.stack.spec import MODEL_SETTINGS, read_layers_file
from textgen_core.training import run_rules
from textgen_core.training.checkpoint import load_checkpoint
from textgen_core.training.cli_outcome import exit_code, print_summary
from textgen_core.training.config import COMPILE_MODES, DEVICES
from textgen_core.training.flags import flag_list
from textgen_core.training.stack_config import StackTrainConfig
from textgen_core.training.stack_trainer import StackRunSpec, train_stack

DEFAULT_OUT = Path("models/stack.pt")
_MODEL_TYPES = {"block_size": int, "n_embd": int, "n_head": int, "dropout": float}
TRAIN_FIELDS = tuple(f.name for f in fields(StackTrainConfig))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m textgen_core.train --model stack",
        description="Train a model built from a TOML list of layers with hand-written backward passes.",
    )
    parser.add_argument("--model", choices=["stack"], required=True)
    parser.add_argument("--layers", metavar="FILE.toml", help="[[layers]] tables (see examples/stacks/)")
    parser.add_argument("--corpus", help="'shakespeare' (default), a .txt file or a folder of them")
    parser.add_argument("--encoding", help="text encoding of the corpus files (default utf-8)")
    parser.add_argument("--out", help=f"checkpoint path (default {DEFAULT_OUT})")
    parser.add_argument("--resume", action="store_true", help="continue the run saved at --out")
    parser.add_argument("--init-from", metavar="CKPT", help="fine-tune this stack checkpoint")
    parser.add_argument("--overwrite", action="store_true",
                        help="allow a fresh run to replace an existing checkpoint at --out")
    parser.add_argument("--device", choices=DEVICES, default="auto")
    parser.add_argument("--compile", choices=COMPILE_MODES, default="auto",
                        help="torch.compile: auto = on for CUDA/MPS, off on CPU")
    model = parser.add_argument_group("model-level sizes (defaults for layers that omit them)")
    for name in MODEL_SETTINGS:
        model.add_argument("--" + name.replace("_", "-"), dest=name, type=_MODEL_TYPES[name],
                           default=None, metavar="N")
    train = parser.add_argument_group("training")
    defaults = StackTrainConfig()
    for name in TRAIN_FIELDS:
        train.add_argument("--" + name.replace("_", "-"), dest=name,
                           type=type(getattr(defaults, name)), default=None, metavar="N")
    return parser


def _given(args: argparse.Namespace, names: tuple[str, ...]) -> dict[str, Any]:
    return {n: getattr(args, n) for n in names if getattr(args, n) is not None}


def _fit_warmup(train: dict[str, Any]) -> dict[str, Any]:
    """A short run (--max-iters at or below the default warm-up) gets a tenth of it as warm-up,
    unless the warm-up was set explicitly."""
    default = StackTrainConfig.warmup_iters
    max_iters = train.get("max_iters", StackTrainConfig.max_iters)
    if "warmup_iters" in train or not isinstance(max_iters, int) or max_iters > default:
        return train
    return {**train, "warmup_iters": max_iters // 10}


def build_spec(args: argparse.Namespace, notes: list[str]) -> StackRunSpec:
    out = Path(args.out) if args.out else DEFAULT_OUT
    model_flags = _given(args, MODEL_SETTINGS)
    train_flags = _given(args, TRAIN_FIELDS)
    common = dict(out=out, device=args.device, compile=args.compile)
    run_rules.check_resume_or_init(args.resume, args.init_from)
    if (args.resume or args.init_from) and args.layers:
        notes.append(f"--layers {args.layers} is ignored: the layers come from the checkpoint")
    if args.resume:
        run_rules.check_resume_exists(out)
        payload = load_checkpoint(out, kind="stack")
        stack_from_checkpoint(payload)
        run_rules.check_resumable(out, payload.get("optimizer") is not None
                                  and "plateau" in payload.get("train_state", {}))
        if model_flags:
            raise ConfigError(f"--resume keeps the saved model; drop {flag_list(sorted(model_flags))}")
        saved = payload["train_state"]
        run_rules.check_resume_corpus(args.corpus, saved)
        train_config = StackTrainConfig.from_dict({**payload["train_config"], **train_flags})
        run_rules.check_steps_left(out, saved["step"], train_config.max_iters)
        return StackRunSpec(train_config=train_config, corpus=saved.get("corpus", "shakespeare"),
                            encoding=saved.get("encoding"), resume_from=payload, **common)
    run_rules.check_fresh_out(out, args.overwrite)
    corpus = args.corpus or "shakespeare"
    if args.init_from:
        payload = load_checkpoint(args.init_from, kind="stack")
        stack_from_checkpoint(payload)
        if model_flags:
            raise ConfigError(f"--init-from keeps the checkpoint's layers; drop "
                              f"{flag_list(sorted(model_flags))}")
        train_config = StackTrainConfig.from_dict(_fit_warmup(train_flags))
        return StackRunSpec(train_config=train_config, corpus=corpus,
                            encoding=args.encoding, init_from=payload,
                            init_from_path=args.init_from, **common)
    if not args.layers:
        raise ConfigError("--model stack needs --layers FILE.toml (examples in examples/stacks/)")
    layers = read_layers_file(args.layers)
    train_config = StackTrainConfig.from_dict(_fit_warmup({**layers.train, **train_flags}),
                                              source=f"{layers.source} [train]")
    return StackRunSpec(train_config=train_config, corpus=corpus, encoding=args.encoding,
                        layers=layers, model_settings={**layers.model, **model_flags}, **common)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    console = Console(stderr=True)

    def command() -> int:
        notes: list[str] = []
        spec = build_spec(args, notes)
        for note in notes:
            console.print(Text(f"note: {note}", style="yellow"))
        return print_summary(spec.out, train_stack(spec))

    return exit_code(console, command)
