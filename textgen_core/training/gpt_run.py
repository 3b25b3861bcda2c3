"""How a GPT run is set up: a `RunRequest` (config file under flags) becomes a `RunSpec` for the
GPT training loop (training/gpt.py). A fresh run starts from the preset that suits the device
(`cpu` on a CPU, `baby` on a GPU); `--resume` continues the saved run with its saved schedule;
`--init-from` fine-tunes a checkpoint's weights with a fresh optimizer and schedule."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

from textgen_core.data.tokenizers import TokenizerSpec, run_tokenizer_spec
from textgen_core.errors import ConfigError
from textgen_core.models.gpt import GPTConfig, gpt_from_checkpoint
from textgen_core.training import run_rules
from textgen_core.training.config import TrainConfig
from textgen_core.training.device import resolve_device
from textgen_core.training.flags import flag_list
from textgen_core.training.new_tokens import with_new_tokens
from textgen_core.training.presets import default_preset, get_preset
from textgen_core.training.run_config import (
    RunRequest,
    RunSpec,
    field_types,
    fit_intervals,
    fit_warmup,
    merge,
)
from textgen_core.training.time_budget import budget_minutes

MODEL_FIELDS = tuple(f.name for f in fields(GPTConfig) if f.name != "vocab_size")
TRAIN_FIELDS = tuple(f.name for f in fields(TrainConfig))
FIELD_TYPES = {"model": field_types(GPTConfig, skip=("vocab_size",)), "train": field_types(TrainConfig)}


def build_spec(request: RunRequest) -> RunSpec[GPTConfig, TrainConfig]:
    run = request.run
    out = Path(run.get("out") or "models/gpt.pt")
    device_name = run.get("device", "auto")
    run_rules.check_resume_or_init(request.resume, request.init_from)
    if request.resume:
        return _resume_spec(request, out, device_name)

    preset = get_preset(run.get("preset") or default_preset(resolve_device(device_name).type))
    run_rules.check_fresh_out(out, request.overwrite)
    train = fit_intervals(fit_warmup(merge(preset["train"], request.train), request.train),
                          request.train)
    train_config = TrainConfig(**train)
    init_payload = None
    tokenizer = (run_tokenizer_spec(_with_preset_tokenizer(run, preset), None, None)
                 if not request.init_from else None)
    if request.init_from:
        init_payload = request.checkpoint(request.init_from, "gpt")
        gpt_from_checkpoint(init_payload)  # validates weights against config before training
        tokenizer = run_tokenizer_spec(run, init_payload, "--init-from")
        if run.get("new_tokens"):
            init_payload = with_new_tokens(init_payload, run["new_tokens"],
                                           run.get("corpus", "shakespeare"), run.get("encoding"))
        changed = sorted(set(request.model) - {"dropout"})
        if changed:
            raise ConfigError(f"--init-from keeps the checkpoint's shape; drop {flag_list(changed)}")
        model_config = GPTConfig.from_dict({**init_payload["model_config"], **request.model})
    else:
        model_config = GPTConfig(**merge(preset["model"], request.model))
    if model_config.block_size < 2:
        raise ConfigError("--block-size must be at least 2")
    return RunSpec(
        model_config=model_config, train_config=train_config,
        corpus=run.get("corpus", "shakespeare"), encoding=run.get("encoding"), out=out,
        device=device_name, compile=run.get("compile", "auto"),
        init_from=init_payload, init_from_path=request.init_from,
        tokenizer=tokenizer or TokenizerSpec(),
        time_budget=budget_minutes(run), max_iters_given="max_iters" in request.train,
    )


def _with_preset_tokenizer(run: dict, preset: dict) -> dict:
    """A fresh run's tokenizer settings: the preset's (`cpu-bpe`: bpe, 2,048) unless the run names
    a tokenizer, which then brings its own vocabulary size or none."""
    if run.get("tokenizer") is not None or "tokenizer" not in preset:
        return run
    return {**run, **preset["tokenizer"],
            **({"vocab_size": run["vocab_size"]} if run.get("vocab_size") is not None else {})}


def _resume_spec(request: RunRequest, out: Path, device: str) -> RunSpec:
    run, train = request.run, request.train
    payload, saved_state = run_rules.resumed_checkpoint(request, out, "gpt", run_state_key="rng",
                                                        rebuild=gpt_from_checkpoint)
    train_config = TrainConfig.resumed(payload["train_config"], train)
    budget = budget_minutes(run)
    if budget is None or "max_iters" in train:  # a budget alone trains on past the saved end
        run_rules.check_steps_left(out, saved_state["step"], train_config.max_iters)
    return RunSpec(
        model_config=GPTConfig.from_dict(payload["model_config"]), train_config=train_config,
        corpus=saved_state.get("corpus", "shakespeare"), encoding=saved_state.get("encoding"),
        out=out, device=device, compile=run.get("compile", "auto"), resume_from=payload,
        time_budget=budget, max_iters_given="max_iters" in train,
    )
