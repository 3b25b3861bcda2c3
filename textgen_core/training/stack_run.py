"""How a layer-stack run is set up (`--model stack --layers FILE.toml`): its own flags, and a
`RunRequest` (config file under flags) becoming a `StackRunSpec` for the stack loop
(training/stack.py).

Precedence: the dataclass defaults < the layers file's [model]/[train] tables < `--preset` <
the --config file < flags. `--resume` and `--init-from` take the layers from the checkpoint and
ignore `--layers`.
"""

from __future__ import annotations

import argparse
from dataclasses import fields
from pathlib import Path
from typing import Any

from textgen_core.data.tokenizers import run_tokenizer_spec
from textgen_core.errors import ConfigError
from textgen_core.models.stack.loading import stack_from_checkpoint
from textgen_core.models.stack.spec import MODEL_SETTINGS, read_layers_file
from textgen_core.training import run_rules
from textgen_core.training.flags import flag_list
from textgen_core.training.new_tokens import with_new_tokens
from textgen_core.training.presets import get_preset
from textgen_core.training.run_config import RunRequest, field_types, fit_intervals, merge
from textgen_core.training.stack import StackModelRequest, StackRunSpec
from textgen_core.training.stack_config import StackTrainConfig
from textgen_core.training.time_budget import budget_minutes

DEFAULT_OUT = Path("models/stack.pt")
MODEL_TYPES = {"block_size": int, "n_embd": int, "n_head": int, "dropout": float}
MODEL_FIELDS = MODEL_SETTINGS
TRAIN_FIELDS = tuple(f.name for f in fields(StackTrainConfig))
FIELD_TYPES = {"model": MODEL_TYPES, "train": field_types(StackTrainConfig)}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The stack's own flags (those the GPT does not have too)."""
    group = parser.add_argument_group("layer stack (--model stack; see docs/layer-stack.md)")
    group.add_argument("--layers", metavar="FILE.toml", help="[[layers]] tables (see examples/stacks/)")
    group.add_argument("--lr-factor", dest="lr_factor", type=float, default=None, metavar="X",
                       help="lr multiplier when the validation loss stalls")
    group.add_argument("--patience", dest="patience", type=int, default=None, metavar="N",
                       help="evaluations without a new best before the lr drops")


def _fit_warmup(train: dict[str, Any], explicit: dict[str, Any]) -> dict[str, Any]:
    """A run shorter than its warm-up (from the defaults, the layers file or a preset) gets a
    tenth of its steps as warm-up, unless the warm-up was set explicitly."""
    max_iters = train.get("max_iters", StackTrainConfig.max_iters)
    warmup = train.get("warmup_iters", StackTrainConfig.warmup_iters)
    if "warmup_iters" in explicit or not isinstance(max_iters, int) or not isinstance(warmup, int) \
            or warmup < max_iters:
        return train
    return {**train, "warmup_iters": max_iters // 10}


def build_spec(request: RunRequest, notes: list[str]) -> StackRunSpec:
    run = request.run
    out = Path(run.get("out") or DEFAULT_OUT)
    model_flags, train_flags = request.model, request.train
    layers_file = run.get("layers")
    common = dict(out=out, device=run.get("device", "auto"), compile=run.get("compile", "auto"),
                  time_budget=budget_minutes(run), max_iters_given="max_iters" in train_flags)
    run_rules.check_resume_or_init(request.resume, request.init_from)
    if (request.resume or request.init_from) and layers_file:
        notes.append(f"--layers {layers_file} is ignored: the layers come from the checkpoint")
    if request.resume:
        payload, saved = run_rules.resumed_checkpoint(request, out, "stack", run_state_key="plateau",
                                                      rebuild=stack_from_checkpoint)
        train_config = StackTrainConfig.from_dict({**payload["train_config"], **train_flags},
                                                  fresh=False)
        if common["time_budget"] is None or "max_iters" in train_flags:  # a budget trains on
            run_rules.check_steps_left(out, saved["step"], train_config.max_iters)
        return StackRunSpec(model_config=None, train_config=train_config,
                            corpus=saved.get("corpus", "shakespeare"),
                            encoding=saved.get("encoding"), resume_from=payload, **common)
    run_rules.check_fresh_out(out, request.overwrite)
    corpus = run.get("corpus") or "shakespeare"
    preset = get_preset(run["preset"], "stack") if run.get("preset") else {"model": {}, "train": {}}
    if request.init_from:
        payload = request.checkpoint(request.init_from, "stack")
        stack_from_checkpoint(payload)
        run_tokenizer_spec(run, payload, "--init-from")
        if run.get("new_tokens"):
            payload = with_new_tokens(payload, run["new_tokens"], corpus, run.get("encoding"))
        if model_flags:
            raise ConfigError(f"--init-from keeps the checkpoint's layers; drop "
                              f"{flag_list(sorted(model_flags))}")
        train = fit_intervals(merge(preset["train"], train_flags), train_flags)
        train_config = StackTrainConfig.from_dict(_fit_warmup(train, train_flags))
        return StackRunSpec(model_config=None, train_config=train_config, corpus=corpus,
                            encoding=run.get("encoding"), init_from=payload,
                            init_from_path=request.init_from, **common)
    if not layers_file:
        raise ConfigError("--model stack needs --layers FILE.toml (examples in examples/stacks/)")
    layers = read_layers_file(layers_file)
    train = fit_intervals(merge(layers.train, preset["train"], train_flags), train_flags)
    train_config = StackTrainConfig.from_dict(_fit_warmup(train, train_flags),
                                              source=f"{layers.source} [train]")
    model = StackModelRequest(layers, merge(layers.model, preset["model"], model_flags))
    return StackRunSpec(model_config=model, train_config=train_config, corpus=corpus,
                        encoding=run.get("encoding"), tokenizer=run_tokenizer_spec(run, None, None),
                        **common)
