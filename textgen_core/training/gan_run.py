"""How a GAN run is set up (`--model gan`): its own flags, and a `RunRequest` (config file under
flags) becoming a `RunSpec` for the GAN loop (training/gan.py).

The shared flags keep their meaning; the GAN adds its own (`--seq-len --vocab-size ...`, below).
Its defaults are the measured recipe (docs/gan.md); `--preset nano` is a seconds-long run.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

from rich.console import Console

from runtime.terminal_text import plain
from textgen_core.errors import ConfigError
from textgen_core.models.gan import CRITIC_INPUTS, NOISE_DISTRIBUTIONS, TOKEN_CHOICES, GANConfig
from textgen_core.training import run_rules
from textgen_core.training.cli_outcome import EXIT_INTERRUPTED
from textgen_core.training.flags import flag_list
from textgen_core.training.gan import GANRunResult, GANRunSpec
from textgen_core.training.gan_config import GANTrainConfig
from textgen_core.training.presets import get_preset
from textgen_core.training.run_config import RunRequest, field_types, fit_intervals, merge
from textgen_core.training.time_budget import budget_minutes

MODEL_FIELDS = tuple(f.name for f in fields(GANConfig))
TRAIN_FIELDS = tuple(f.name for f in fields(GANTrainConfig))
FIELD_TYPES = {"model": field_types(GANConfig), "train": field_types(GANTrainConfig)}
RESUME_MAY_CHANGE = ("critic_input",)  # model settings that are training choices


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The GAN's own flags (those the GPT does not have too)."""
    group = parser.add_argument_group("GAN (--model gan; see docs/gan.md)")
    ints = {"seq_len": "S: words per sentence including <end>",
            "vocab_size": "words kept, with <end> and <unk> (gpt and stack: the --tokenizer word "
                          "or bpe vocabulary)",
            "ffn_hidden": "feed-forward width", "n_mapping": "M: mapping-network layers",
            "n_noise_blocks": "B: generator blocks with noise",
            "n_output_blocks": "O: blocks without noise",
            "critic_layers": "critic transformer blocks",
            "critic_steps": "critic updates per generator update",
            "mle_iters": "MLE warm-up steps (part of --max-iters)",
            "gumbel_anneal_steps": "--critic-input gumbel: adversarial steps over which the "
                                   "inverse temperature rises to --gumbel-max-beta (default 300)"}
    for name, text in ints.items():
        group.add_argument("--" + name.replace("_", "-"), dest=name, type=int, default=None, metavar="N",
                           help=text)
    floats = {"mle_learning_rate": "generator lr during the warm-up", "d_learning_rate": "critic lr",
              "gp_weight": "gradient-penalty weight λ", "mle_weight": "MLE loss kept after the warm-up",
              "gumbel_max_beta": "--critic-input gumbel: the inverse temperature the relaxation "
                                 "rises to, from 1 (default 100)"}
    for name, text in floats.items():
        group.add_argument("--" + name.replace("_", "-"), dest=name, type=float, default=None, metavar="X",
                           help=text)
    group.add_argument("--noise-1d", dest="noise_1d", action=argparse.BooleanOptionalAction, default=None,
                       help="map (N, S) global noise and broadcast it over E (cheaper)")
    group.add_argument("--noise-dist", dest="noise_dist", choices=NOISE_DISTRIBUTIONS, default=None,
                       help="distribution of the generator's noise (default: the GAN's recipe)")
    group.add_argument("--token-choice", dest="token_choice", choices=TOKEN_CHOICES, default=None,
                       help="how the fed-back word is chosen: sample (default) or argmax")
    group.add_argument("--critic-input", dest="critic_input", choices=CRITIC_INPUTS, default=None,
                       help="what the critic reads of a generated word: the one-hot word with the "
                            "softmax's gradient (straight-through), the softmax itself (soft), or a "
                            "Gumbel-softmax sample annealed towards one-hot (gumbel)")


def build_spec(request: RunRequest) -> GANRunSpec:
    run, model, train = request.run, dict(request.model), dict(request.train)
    out = Path(run.get("out") or "models/gan.pt")
    device, compile_mode = run.get("device", "auto"), run.get("compile", "auto")
    budget = dict(time_budget=budget_minutes(run), max_iters_given="max_iters" in request.train)
    run_rules.check_resume_or_init(request.resume, request.init_from)
    if request.resume:
        # What the critic reads of a fake sentence is a training choice the model's settings
        # record, not its shape: a resume may change it (an adversarial phase with another
        # critic input continued from one warm-up, docs/gan.md).
        choices = {name: model.pop(name) for name in RESUME_MAY_CHANGE if name in model}
        payload, saved = run_rules.resumed_checkpoint(replace(request, model=model), out, "gan",
                                                      run_state_key="rng",
                                                      has_tokenizer_choice=False)
        tc = GANTrainConfig.from_dict({**payload["train_config"], **train}, fresh=False)
        if budget["time_budget"] is None or budget["max_iters_given"]:  # a budget trains on
            run_rules.check_steps_left(out, saved["step"], tc.max_iters)
        return GANRunSpec(model_config=replace(_config_from(payload), **choices), train_config=tc,
                          corpus=saved.get("corpus", "shakespeare"), encoding=saved.get("encoding"),
                          out=out, device=device, compile=compile_mode, resume_from=payload, **budget)
    run_rules.check_fresh_out(out, request.overwrite)
    recipe: dict[str, Any] = {}  # the defaults, or the preset's
    if run.get("preset"):
        preset = get_preset(run["preset"], "gan")
        model = merge(preset["model"], model)
        recipe = preset["train"]
        train = fit_intervals(merge(recipe, train), request.train)
    max_iters = train.get("max_iters", GANTrainConfig.max_iters)
    recipe_max = recipe.get("max_iters", GANTrainConfig.max_iters)
    recipe_mle = recipe.get("mle_iters", GANTrainConfig.mle_iters)
    if "mle_iters" not in request.train and isinstance(max_iters, int) and max_iters < recipe_mle:
        # A short run keeps the recipe's share of warm-up instead of failing on its count.
        train["mle_iters"] = max_iters * recipe_mle // recipe_max
    tc = GANTrainConfig(**train)
    init_payload = None
    if request.init_from:
        init_payload = request.checkpoint(request.init_from, "gan")
        if request.model:
            raise ConfigError(f"--init-from keeps the checkpoint's shape; drop "
                              f"{flag_list(sorted(request.model))}")
        config = _config_from(init_payload)
    else:
        config = GANConfig(**model)
    return GANRunSpec(model_config=config, train_config=tc, corpus=run.get("corpus", "shakespeare"),
                      encoding=run.get("encoding"), out=out, device=device, compile=compile_mode,
                      init_from=init_payload, init_from_path=request.init_from, **budget)


def _config_from(payload: dict[str, Any]) -> GANConfig:
    from textgen_core.models.gan import gan_from_checkpoint

    gan, _ = gan_from_checkpoint(payload)  # validates config, tokenizer and weights together
    return gan.config


def summary(out: Path, result: GANRunResult) -> int:
    """The GAN run's last line; the exit code says whether Ctrl-C stopped the run."""
    if math.isfinite(result.val_nll):
        measured = (f"held-out NLL {result.val_nll:.4f} nats/word, critic W estimate "
                    f"{result.wasserstein:.4f}")
    else:  # saved (Ctrl-C) before the first evaluation
        measured = "not evaluated yet"
    Console().print(plain(  # the --out name is shown as written, never read as rich markup
        f"saved {out}: step {result.step}, {measured}, {result.sentences_per_s:,.0f} sentences/s, "
        f"{result.train_seconds:.0f} s of training"), highlight=False, soft_wrap=True)
    return EXIT_INTERRUPTED if result.interrupted else 0
