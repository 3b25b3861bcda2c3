"""`python -m textgen_core.train --model gan`: the GAN's flags and the run they describe.

The common flags keep their meaning (`--corpus --out --resume --init-from --overwrite --device
--compile --config --seed --max-iters --batch-size --learning-rate --beta1 --beta2 --grad-clip
--eval-interval --checkpoint-interval --log-interval --n-embd --n-head`); the GAN adds its own
(`--seq-len --vocab-size ...`). GPT-only flags are refused instead of silently ignored.
"""

from __future__ import annotations

import argparse
import tomllib
from dataclasses import fields
from pathlib import Path
from typing import Any

from rich.console import Console

from textgen_core.errors import ConfigError
from textgen_core.models.gan import CRITIC_INPUTS, NOISE_DISTRIBUTIONS, TOKEN_CHOICES, GANConfig
from textgen_core.training import run_rules
from textgen_core.training.checkpoint import load_checkpoint
from textgen_core.training.cli_outcome import EXIT_INTERRUPTED, exit_code
from textgen_core.training.flags import flag_list
from textgen_core.training.gan_config import GANTrainConfig
from textgen_core.training.gan_trainer import GANRunSpec, train_gan
from textgen_core.training.run_config import Settings, merge, read_config_file

GAN_MODEL_FIELDS = tuple(f.name for f in fields(GANConfig))
GAN_TRAIN_FIELDS = tuple(f.name for f in fields(GANTrainConfig))
GPT_ONLY_FIELDS = ("n_layer", "block_size", "dropout", "bias", "gradient_accumulation_steps",
                   "min_lr", "warmup_iters", "lr_decay_iters", "weight_decay", "eval_iters",
                   "sample_tokens", "preset", "yoke", "yoke_windows")
_RUN_KEYS = ("corpus", "encoding", "out", "device", "compile", "model")


def add_gan_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("GAN (--model gan; see docs/gan.md)")
    ints = {"seq_len": "S: words per sentence including <end>",
            "vocab_size": "words kept, with <end> and <unk>",
            "ffn_hidden": "feed-forward width", "n_mapping": "M: mapping-network layers",
            "n_noise_blocks": "B: generator blocks with noise",
            "n_output_blocks": "O: blocks without noise",
            "critic_layers": "critic transformer blocks",
            "critic_steps": "critic updates per generator update",
            "mle_iters": "MLE warm-up steps (part of --max-iters)"}
    for name, text in ints.items():
        group.add_argument("--" + name.replace("_", "-"), dest=name, type=int, default=None, metavar="N",
                           help=text)
    floats = {"mle_learning_rate": "generator lr during the warm-up", "d_learning_rate": "critic lr",
              "gp_weight": "gradient-penalty weight λ", "mle_weight": "MLE loss kept after the warm-up"}
    for name, text in floats.items():
        group.add_argument("--" + name.replace("_", "-"), dest=name, type=float, default=None, metavar="X",
                           help=text)
    group.add_argument("--noise-1d", dest="noise_1d", action=argparse.BooleanOptionalAction, default=None,
                       help="map (N, S) global noise and broadcast it over E (cheaper)")
    group.add_argument("--noise-dist", dest="noise_dist", choices=NOISE_DISTRIBUTIONS, default=None)
    group.add_argument("--token-choice", dest="token_choice", choices=TOKEN_CHOICES, default=None,
                       help="how the fed-back word is chosen: sample (default) or argmax")
    group.add_argument("--critic-input", dest="critic_input", choices=CRITIC_INPUTS, default=None)


def wants_gan(args: argparse.Namespace) -> bool:
    """`--model gan`, or `model = "gan"` in the --config file when --model is not given."""
    if args.model is not None:
        return args.model == "gan"
    if not args.config or not Path(args.config).is_file():
        return False
    try:
        return tomllib.loads(Path(args.config).read_text(encoding="utf-8")).get("model") == "gan"
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, OSError):
        return False  # the GPT path reports the broken file


def build_gan_spec(args: argparse.Namespace) -> GANRunSpec:
    given_gpt = [n for n in GPT_ONLY_FIELDS if getattr(args, n, None) is not None]
    if given_gpt:
        raise ConfigError(f"{flag_list(given_gpt)} do(es) not apply to --model gan")
    file = (read_config_file(args.config, _RUN_KEYS, GAN_MODEL_FIELDS, GAN_TRAIN_FIELDS, family="GAN ")
            if args.config else Settings({}, {}, {}))
    run = merge(file.run, {k: getattr(args, k) for k in _RUN_KEYS})
    flag_model = {k: getattr(args, k) for k in GAN_MODEL_FIELDS if getattr(args, k, None) is not None}
    flag_train = {k: getattr(args, k) for k in GAN_TRAIN_FIELDS if getattr(args, k, None) is not None}
    model = merge(file.model, flag_model)
    train = merge(file.train, flag_train)
    out = Path(run.get("out") or "models/gan.pt")
    device, compile_mode = run.get("device", "auto"), run.get("compile", "auto")
    run_rules.check_resume_or_init(args.resume, args.init_from)
    if args.resume:
        run_rules.check_resume_exists(out)
        payload = load_checkpoint(out, kind="gan")
        run_rules.check_resumable(out, isinstance(payload.get("optimizer"), dict)
                                  and "rng" in payload.get("train_state", {}))
        if model:
            raise ConfigError(f"--resume keeps the saved model shape; drop {flag_list(sorted(model))}")
        saved = payload["train_state"]
        run_rules.check_resume_corpus(run.get("corpus"), saved)
        tc = GANTrainConfig.from_dict({**payload["train_config"], **train})
        run_rules.check_steps_left(out, saved["step"], tc.max_iters)
        return GANRunSpec(model_config=_config_from(payload), train_config=tc,
                          corpus=saved.get("corpus", "shakespeare"), encoding=saved.get("encoding"),
                          out=out, device=device, compile=compile_mode, resume_from=payload)
    run_rules.check_fresh_out(out, args.overwrite)
    max_iters = train.get("max_iters", GANTrainConfig.max_iters)
    if "mle_iters" not in train and max_iters < GANTrainConfig.mle_iters:
        # A short run keeps the default share of warm-up instead of failing on the default count.
        train["mle_iters"] = max_iters * GANTrainConfig.mle_iters // GANTrainConfig.max_iters
    tc = GANTrainConfig(**train)
    init_payload = None
    if args.init_from:
        init_payload = load_checkpoint(args.init_from, kind="gan")
        if model:
            raise ConfigError(f"--init-from keeps the checkpoint's shape; drop {flag_list(sorted(model))}")
        config = _config_from(init_payload)
    else:
        config = GANConfig(**model)
    return GANRunSpec(model_config=config, train_config=tc, corpus=run.get("corpus", "shakespeare"),
                      encoding=run.get("encoding"), out=out, device=device, compile=compile_mode,
                      init_from=init_payload, init_from_path=args.init_from)


def _config_from(payload: dict[str, Any]) -> GANConfig:
    from textgen_core.models.gan_loading import gan_from_checkpoint

    gan, _ = gan_from_checkpoint(payload)  # validates config, tokenizer and weights together
    return gan.config


def run_gan(args: argparse.Namespace) -> int:
    return exit_code(Console(stderr=True), lambda: _train(args))


def _train(args: argparse.Namespace) -> int:
    spec = build_gan_spec(args)
    result = train_gan(spec)
    Console().print(
        f"saved {spec.out}: step {result.step}, held-out NLL {result.val_nll:.4f} nats/word, critic W "
        f"estimate {result.wasserstein:.4f}, {result.sentences_per_s:,.0f} sentences/s, "
        f"{result.train_seconds:.0f} s of training", highlight=False, soft_wrap=True)
    return EXIT_INTERRUPTED if result.interrupted else 0
