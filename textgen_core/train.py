"""`python -m textgen_core.train`: train a model and write a checkpoint.

No arguments: a char GPT on the built-in `shakespeare` corpus with the preset that suits the
device (`cpu` on a CPU, `baby` on a GPU), written to models/gpt.pt.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console

from runtime.yoke_spec import FORMAT as YOKE_FORMAT
from textgen_core.data.corpus import resolve_corpus
from textgen_core.data.gutenberg import is_gutenberg_spec
from textgen_core.errors import ConfigError
from textgen_core.models.gpt import POSITIONS, GPTConfig
from textgen_core.models.loading import gpt_from_checkpoint
from textgen_core.training import run_rules
from textgen_core.training.checkpoint import load_checkpoint
from textgen_core.training.cli_outcome import EXIT_INTERRUPTED, exit_code, print_summary
from textgen_core.training.config import COMPILE_MODES, DEVICES, TrainConfig
from textgen_core.training.device import resolve_device
from textgen_core.training.flags import flag_list
from textgen_core.training.gan_run_config import add_gan_arguments, run_gan, wants_gan
from textgen_core.training.presets import default_preset, get_preset
from textgen_core.training.run_config import (
    MODEL_FIELDS,
    TRAIN_FIELDS,
    Settings,
    fit_intervals,
    fit_warmup,
    merge,
    read_config_file,
)
from textgen_core.training.trainer import RunSpec, train_gpt


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m textgen_core.train",
        description="Train a text-generation model and write a checkpoint.",
    )
    parser.add_argument("--model", choices=["gpt", "stack", "gan"], default=None,
                        help="model family (default gpt; stack: see --model stack --help)")
    parser.add_argument("--corpus", help="'shakespeare' (default), a .txt file or a folder of them, "
                                         "gutenberg:ID,..., women-writers, philosophers")
    parser.add_argument("--encoding", help="text encoding of the corpus files (default utf-8)")
    parser.add_argument("--gutenberg-mirror", metavar="URL",
                        help="Project Gutenberg mirror for gutenberg:IDS and the named collections "
                             "(default $TEXTGEN_GUTENBERG_MIRROR, else https://www.gutenberg.org/)")
    parser.add_argument("--out", help="checkpoint path (default models/<model>.pt)")
    parser.add_argument("--preset", help="named settings: cpu, baby, fast, nano (default: by device)")
    parser.add_argument("--config", help="TOML file of settings ([model], [train] tables)")
    parser.add_argument("--resume", action="store_true", help="continue the run saved at --out")
    parser.add_argument("--init-from", metavar="CKPT", help="fine-tune from this checkpoint")
    parser.add_argument("--overwrite", action="store_true",
                        help="allow a fresh run to replace an existing checkpoint at --out")
    parser.add_argument("--device", choices=DEVICES, help="default auto: cuda, then mps, then cpu")
    parser.add_argument("--compile", choices=COMPILE_MODES,
                        help="torch.compile: auto = on for CUDA/MPS, off on CPU")
    model_group = parser.add_argument_group("model shape (override the preset)")
    defaults = GPTConfig()
    for name in MODEL_FIELDS:
        _add_field(model_group, name, getattr(defaults, name))
    train_group = parser.add_argument_group("training (override the preset)")
    train_defaults = TrainConfig()
    for name in TRAIN_FIELDS:
        _add_field(train_group, name, getattr(train_defaults, name))
    add_gan_arguments(parser)
    return parser


def _add_field(group: argparse._ArgumentGroup, name: str, default: object) -> None:
    flag = "--" + name.replace("_", "-")
    if isinstance(default, bool):
        group.add_argument(flag, dest=name, action=argparse.BooleanOptionalAction, default=None)
    elif name == "yoke":
        group.add_argument(flag, dest=name, type=str, default=None, metavar=YOKE_FORMAT,
                           help="narrow block LAYER's feed-forward to HIDDEN units (docs/yoke.md)")
    elif name == "positions":
        group.add_argument(flag, dest=name, choices=POSITIONS, default=None,
                           help="rotary (default; the cache slides without re-reading) or "
                                "learned (nanoGPT's absolute embeddings)")
    else:
        group.add_argument(flag, dest=name, type=type(default), default=None, metavar="N")


def build_spec(args: argparse.Namespace) -> RunSpec:
    flags = Settings(
        run={k: getattr(args, k) for k in ("preset", "corpus", "encoding", "out", "device",
                                           "compile", "model")},
        model={k: getattr(args, k) for k in MODEL_FIELDS if getattr(args, k) is not None},
        train={k: getattr(args, k) for k in TRAIN_FIELDS if getattr(args, k) is not None},
    )
    file = read_config_file(args.config) if args.config else Settings({}, {}, {})
    run = merge(file.run, flags.run)
    model_kind = run.get("model", "gpt")
    if model_kind != "gpt":
        raise ConfigError(f"--model {model_kind!r} is not available; this version trains: gpt")
    out = Path(run.get("out") or f"models/{model_kind}.pt")
    device_name = run.get("device", "auto")
    explicit_model = merge(file.model, flags.model)
    explicit_train = merge(file.train, flags.train)

    run_rules.check_resume_or_init(args.resume, args.init_from)
    if args.resume:
        return _resume_spec(out, run, explicit_model, explicit_train, device_name)

    preset_name = run.get("preset") or default_preset(resolve_device(device_name).type)
    preset = get_preset(preset_name)
    run_rules.check_fresh_out(out, args.overwrite)
    train = fit_intervals(fit_warmup(merge(preset["train"], explicit_train), explicit_train),
                          explicit_train)
    train_config = TrainConfig(**train)
    init_payload = None
    if args.init_from:
        init_payload = load_checkpoint(args.init_from, kind="gpt")
        gpt_from_checkpoint(init_payload)  # validates weights against config before training
        changed = sorted(set(explicit_model) - {"dropout"})
        if changed:
            raise ConfigError(f"--init-from keeps the checkpoint's shape; drop {flag_list(changed)}")
        model_config = GPTConfig.from_dict(
            {**init_payload["model_config"], **explicit_model}
        )
    else:
        model_config = GPTConfig(**merge(preset["model"], explicit_model))
    if model_config.block_size < 2:
        raise ConfigError("--block-size must be at least 2")
    return RunSpec(
        model_config=model_config, train_config=train_config,
        corpus=run.get("corpus", "shakespeare"), encoding=run.get("encoding"), out=out,
        device=device_name, compile=run.get("compile", "auto"),
        init_from=init_payload, init_from_path=args.init_from,
    )


def _resume_spec(out: Path, run: dict, model: dict, train: dict, device: str) -> RunSpec:
    run_rules.check_resume_exists(out)
    payload = load_checkpoint(out, kind="gpt")
    gpt_from_checkpoint(payload)
    run_rules.check_resumable(out, payload.get("optimizer") is not None
                              and "rng" in payload.get("train_state", {}))
    if model:
        raise ConfigError(f"--resume keeps the saved model shape; drop {flag_list(sorted(model))}")
    saved_state = payload["train_state"]
    run_rules.check_resume_corpus(run.get("corpus"), saved_state)
    train_config = TrainConfig(**{**payload["train_config"], **train})
    run_rules.check_steps_left(out, saved_state["step"], train_config.max_iters)
    return RunSpec(
        model_config=GPTConfig.from_dict(payload["model_config"]), train_config=train_config,
        corpus=saved_state.get("corpus", "shakespeare"), encoding=saved_state.get("encoding"),
        out=out, device=device, compile=run.get("compile", "auto"), resume_from=payload,
    )


def _selects_stack(argv: list[str]) -> bool:
    """`--model stack` has settings of its own (layers file, plateau rule): training/stack_cli.py."""
    pairs = zip(argv, [*argv[1:], ""], strict=True)
    return any(a == "--model=stack" or (a == "--model" and b == "stack") for a, b in pairs)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if _selects_stack(argv):
        from textgen_core.training.stack_cli import main as stack_main

        return stack_main(argv)
    args = build_parser().parse_args(argv)
    if wants_gan(args):  # the text GAN: training/gan_run_config.py
        return run_gan(args)
    return exit_code(Console(stderr=True), lambda: _train(args))


def _train(args: argparse.Namespace) -> int:
    spec = build_spec(args)
    if is_gutenberg_spec(spec.corpus):
        # Fetch missing books now, from the chosen mirror; training then reads the cache.
        resolve_corpus(spec.corpus, spec.encoding, gutenberg_mirror=args.gutenberg_mirror)
    result = train_gpt(spec)
    if not result.is_main:
        return EXIT_INTERRUPTED if result.interrupted else 0
    return print_summary(spec.out, result)


if __name__ == "__main__":
    sys.exit(main())
