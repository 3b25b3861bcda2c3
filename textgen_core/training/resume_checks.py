"""The run state a checkpoint carries (train_state, train_config, optimizer), checked before any
of it reaches the trainers or a fused kernel.

Two levels:
- `check_run_state(payload)`, called by `load_checkpoint` for every file: each known
  `train_state` entry has its type, a run state (one with `rng`) has what a resume reads, the
  `train_config` is settings this textgen knows, and the optimizer state is well formed, every
  tensor in it dense and contiguous (checkpoint_checks.check_dense_tensor).
- `guard_optimizer(optimizer)`: from then on `optimizer.load_state_dict(saved)` first matches
  `saved` against the optimizer's own parameters (group count and sizes, every moment's shape,
  scalar steps, complete per-parameter entries, known options) and refuses what does not fit
  with a CheckpointError. A fused AdamW writes as many elements as the parameter has into each
  moment, so a wrong shape would corrupt memory instead of raising.

Every failure is a CheckpointError that names the field.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import fields
from typing import Any

import torch

from textgen_core.errors import CheckpointError, ConfigError
from textgen_core.models.checkpoint_checks import check_dense_tensor
from textgen_core.training.rng import check_rng_state

# train_state entries the trainers read, by the type each must have. Entries not listed are
# left alone (a trainer may record more; none reads another's).
_COUNTS = {"step": 0, "tokens_seen": 0, "sentences_seen": 0, "world_size": 1}  # int >= minimum
_LOSSES = ("val_loss", "best_val_loss", "val_nll", "best_val_nll", "wasserstein")  # NaN/inf allowed
_DURATIONS = ("train_seconds",)  # finite >= 0
_NAMES = ("corpus", "encoding", "corpus_fingerprint")  # str or None
# What a resume reads by name, beyond the counts' defaults.
_RUN_STATE = {"gpt": ("step",), "gan": ("step",), "stack": ("step", "plateau")}
# Options that say how the update runs on this machine rather than what it computes; a resumed
# optimizer keeps its own (a run saved with the CUDA fused kernel resumes on a Mac).
_IMPLEMENTATION_OPTIONS = ("foreach", "fused", "capturable", "differentiable")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _plain(value: Any) -> bool:
    if isinstance(value, (tuple, list)):
        return len(value) <= 4 and all(isinstance(v, (int, float, str, bool, type(None))) for v in value)
    return isinstance(value, (int, float, str, bool, type(None)))


def _describe(value: Any) -> str:
    text = repr(value) if _plain(value) else type(value).__name__
    return text if len(text) <= 40 else text[:37] + "..."


def check_run_state(payload: dict[str, Any]) -> None:
    """The train_state, train_config and optimizer of a loaded checkpoint are well formed."""
    kind = payload.get("kind")
    state = payload.get("train_state")
    if state is None:
        state = {}
    if not isinstance(state, dict):
        raise CheckpointError(f"checkpoint train_state is not a table (got {type(state).__name__})")
    _check_train_state(state, kind)
    optimizer = payload.get("optimizer")
    if optimizer is not None:
        if kind == "gan":
            if not isinstance(optimizer, dict) or set(optimizer) != {"generator", "discriminator"}:
                raise CheckpointError("checkpoint optimizer must hold a 'generator' and a "
                                      "'discriminator' optimizer state")
            for player in ("generator", "discriminator"):
                check_optimizer_layout(optimizer[player], f"optimizer.{player}")
        else:
            check_optimizer_layout(optimizer, "optimizer")
    train_config = payload.get("train_config")
    if train_config is None:
        train_config = {}
    if not isinstance(train_config, dict) or not all(isinstance(k, str) for k in train_config):
        raise CheckpointError("checkpoint train_config is not a table of settings")
    if "rng" in state:  # a run state: what --resume reads must be there
        for key in _RUN_STATE.get(kind, ("step",)):
            if key not in state:
                raise CheckpointError(f"checkpoint train_state has no {key!r}; it cannot be resumed")
        _check_train_config(train_config, kind)


def _check_train_state(state: dict[str, Any], kind: Any) -> None:
    for key, minimum in _COUNTS.items():
        if key in state:
            value = state[key]
            if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
                raise CheckpointError(f"checkpoint train_state {key} must be an integer >= {minimum}, "
                                      f"got {_describe(value)}")
    for key in _LOSSES:
        if key in state and not _is_number(state[key]):
            raise CheckpointError(f"checkpoint train_state {key} must be a number, got "
                                  f"{_describe(state[key])}")
    for key in _DURATIONS:
        if key in state and not (_is_number(state[key]) and math.isfinite(state[key])
                                 and state[key] >= 0):
            raise CheckpointError(f"checkpoint train_state {key} must be a finite number >= 0, got "
                                  f"{_describe(state[key])}")
    for key in _NAMES:
        if key in state and state[key] is not None and not isinstance(state[key], str):
            raise CheckpointError(f"checkpoint train_state {key} must be text, got "
                                  f"{_describe(state[key])}")
    if "rng" in state:
        check_rng_state(state["rng"])
    if "plateau" in state:
        _check_plateau(state["plateau"])
    if "yoke_stream" in state:
        _check_stream(state["yoke_stream"])


def _check_plateau(plateau: Any) -> None:
    from textgen_core.training.stack_config import Plateau

    if not isinstance(plateau, dict):
        raise CheckpointError("checkpoint train_state plateau is not a table")
    known = {f.name: f for f in fields(Plateau)}
    for key, value in plateau.items():
        if key not in known:
            raise CheckpointError(f"checkpoint train_state plateau has an unknown entry {key!r}")
        if known[key].type == "int":
            fits = isinstance(value, int) and not isinstance(value, bool) and value >= 0
        else:  # the rate and the best loss so far (infinite before the first evaluation)
            fits = _is_number(value) and not math.isnan(value)
        if not fits:
            raise CheckpointError(f"checkpoint train_state plateau {key} is {_describe(value)}")
    if "lr" not in plateau:
        raise CheckpointError("checkpoint train_state plateau has no 'lr'")


def _check_stream(stream: Any) -> None:
    if not isinstance(stream, dict):
        raise CheckpointError("checkpoint train_state yoke_stream is not a table")
    drawn = stream.get("drawn")
    if not isinstance(drawn, int) or isinstance(drawn, bool) or drawn < 0:
        raise CheckpointError(f"checkpoint train_state yoke_stream drawn must be an integer >= 0, "
                              f"got {_describe(drawn)}")
    starts = check_dense_tensor(stream.get("starts"), "train_state yoke_stream starts", floating=False)
    state = check_dense_tensor(stream.get("state"), "train_state yoke_stream state")
    if starts.dim() != 1 or starts.dtype.is_floating_point or starts.dtype == torch.bool:
        raise CheckpointError("checkpoint train_state yoke_stream starts is not a 1-d integer tensor")
    if state.dim() != 2 or state.size(0) != starts.size(0):
        raise CheckpointError(f"checkpoint train_state yoke_stream state has shape "
                              f"{tuple(state.shape)}; it needs one row per stream ({starts.size(0)})")


def _check_train_config(train_config: dict[str, Any], kind: Any) -> None:
    """The saved settings read back the way a resume reads them (without the rules meant for
    planning a fresh run)."""
    if kind == "gpt":
        from textgen_core.training.config import TrainConfig

        known = {f.name for f in fields(TrainConfig)}
        read = lambda: TrainConfig.resumed(train_config, {})  # noqa: E731
    elif kind == "gan":
        from textgen_core.training.gan_config import GANTrainConfig

        known = None  # the GAN reader drops settings it does not know
        read = lambda: GANTrainConfig.from_dict(train_config, fresh=False)  # noqa: E731
    elif kind == "stack":
        from textgen_core.training.stack_config import StackTrainConfig

        known = {f.name for f in fields(StackTrainConfig)}
        read = lambda: StackTrainConfig.from_dict(train_config, fresh=False)  # noqa: E731
    else:
        return
    unknown = sorted(set(train_config) - known) if known is not None else []
    if unknown:
        raise CheckpointError(f"checkpoint train_config has unknown setting(s) "
                              f"{', '.join(repr(u)[:40] for u in unknown[:5])}; it was written by "
                              "another textgen version or edited")
    try:
        read()
    except (ConfigError, TypeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"checkpoint train_config is invalid: {first[:200]}") from None


def _param_ids(group: Any, where: str) -> list[int]:
    if not isinstance(group, dict):
        raise CheckpointError(f"checkpoint {where} is not a table")
    ids = group.get("params")
    if not isinstance(ids, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
        raise CheckpointError(f"checkpoint {where} params is not a list of parameter ids")
    return ids


def _check_step(value: Any, where: str) -> None:
    if isinstance(value, torch.Tensor):
        check_dense_tensor(value, where, floating=False)
        if value.dim() != 0 or value.dtype == torch.bool or value.is_complex():
            raise CheckpointError(f"checkpoint {where} must be a scalar, got shape {tuple(value.shape)}")
        value = float(value)
    elif not _is_number(value):
        raise CheckpointError(f"checkpoint {where} must be a number, got {_describe(value)}")
    if not (math.isfinite(value) and value >= 0):
        raise CheckpointError(f"checkpoint {where} must be a finite count >= 0, got {value}")


def check_optimizer_layout(saved: Any, what: str = "optimizer") -> dict[int, dict[str, Any]]:
    """`saved` is an optimizer state_dict: parameter groups (at least one) of distinct ids, a
    state entry per id at most, each a table of dense tensors and scalar steps. Returns the
    state by id."""
    if not isinstance(saved, dict) or "state" not in saved or "param_groups" not in saved:
        raise CheckpointError(f"checkpoint {what} is not an optimizer state "
                              "(no 'state' and 'param_groups')")
    unknown = sorted(str(k) for k in saved if k not in ("state", "param_groups"))
    if unknown:
        raise CheckpointError(f"checkpoint {what} has unknown entries {', '.join(unknown[:3])}")
    groups, state = saved["param_groups"], saved["state"]
    if not isinstance(groups, list) or not groups:
        raise CheckpointError(f"checkpoint {what} has no parameter groups")
    seen: set[int] = set()
    for i, group in enumerate(groups):
        for pid in _param_ids(group, f"{what} parameter group {i}"):
            if pid in seen:
                raise CheckpointError(f"checkpoint {what} lists parameter {pid} twice")
            seen.add(pid)
    if not isinstance(state, dict):
        raise CheckpointError(f"checkpoint {what} state is not a table")
    storages: dict[int, str] = {}
    for pid, entry in state.items():
        where = f"{what} state of parameter {_describe(pid)}"
        if pid not in seen:
            raise CheckpointError(f"checkpoint {where}: no parameter group holds that parameter")
        if not isinstance(entry, dict) or not all(isinstance(k, str) for k in entry):
            raise CheckpointError(f"checkpoint {where} is not a table")
        for key, value in entry.items():
            if key == "step":
                _check_step(value, f"{where}: step")
                continue
            tensor = check_dense_tensor(value, f"{where}: {key}")
            if tensor.numel():
                # Two moments in one buffer would be updated twice per step, with no error.
                address = tensor.untyped_storage().data_ptr()
                if address in storages:
                    raise CheckpointError(f"checkpoint {where}: {key} shares its memory with "
                                          f"{storages[address]}")
                storages[address] = f"{where}: {key}"
    return state


def _required_state(optimizer: torch.optim.Optimizer, group: dict[str, Any]) -> set[str] | None:
    """The entries a parameter's state must hold once it has any, for the optimizers textgen
    makes; None for others (their entries are only checked for layout and shape)."""
    from textgen_core.training.muon import MuonAdamW

    if isinstance(optimizer, MuonAdamW):
        return {"momentum_buffer"} if group.get("kind") == "muon" else {"step", "exp_avg", "exp_avg_sq"}
    if isinstance(optimizer, (torch.optim.Adam, torch.optim.AdamW)):
        return {"step", "exp_avg", "exp_avg_sq"} | ({"max_exp_avg_sq"} if group.get("amsgrad") else set())
    return None


def _checked_options(saved: dict[str, Any], group: dict[str, Any], where: str) -> dict[str, Any]:
    """The saved group's options, checked against the optimizer's own group: the same names, the
    same kinds of value, finite numbers; implementation options and missing ones are the
    optimizer's own."""
    options = {k: v for k, v in group.items() if k != "params"}
    for key, value in saved.items():
        if key in ("params", *_IMPLEMENTATION_OPTIONS):
            continue
        if key == "param_names":
            if not isinstance(value, list) or not all(isinstance(n, str) for n in value):
                raise CheckpointError(f"checkpoint {where} param_names is not a list of names")
            options[key] = value
            continue
        if key not in group:
            raise CheckpointError(f"checkpoint {where} has an unknown option {_describe(key)}")
        own = group[key]
        if isinstance(own, (bool, str)):
            fits = type(value) is type(own) and value == own
        elif _is_number(own):
            fits = _is_number(value) and math.isfinite(value) and value >= 0
        elif isinstance(own, (tuple, list)):
            fits = (isinstance(value, (tuple, list)) and len(value) == len(own)
                    and all(_is_number(v) and 0 <= v < 1 for v in value))
        else:
            fits = value is None or value == own
        if not fits:
            raise CheckpointError(f"checkpoint {where} option {key} is {_describe(value)}; this "
                                  f"optimizer has {_describe(own)}")
        options[key] = value
    return options


def checked_optimizer_state(optimizer: torch.optim.Optimizer, saved: Any,
                            what: str = "optimizer") -> dict[str, Any]:
    """`saved`, checked against `optimizer`'s parameters, ready for `load_state_dict`."""
    state = check_optimizer_layout(saved, what)
    groups = saved["param_groups"]
    own_groups = optimizer.param_groups
    if len(groups) != len(own_groups):
        raise CheckpointError(f"checkpoint {what} has {len(groups)} parameter group(s), this run's "
                              f"optimizer {len(own_groups)} (was it saved with another --optimizer?)")
    param_of: dict[int, tuple[torch.Tensor, dict[str, Any]]] = {}
    new_groups = []
    for i, (group, own) in enumerate(zip(groups, own_groups, strict=True)):
        where = f"{what} parameter group {i}"
        ids = _param_ids(group, where)
        if len(ids) != len(own["params"]):
            raise CheckpointError(f"checkpoint {where} holds {len(ids)} parameters; the model has "
                                  f"{len(own['params'])} there")
        for pid, param in zip(ids, own["params"], strict=True):
            param_of[pid] = (param, own)
        new_groups.append({**_checked_options(group, own, where), "params": ids})
    for pid, entry in state.items():
        param, own = param_of[pid]
        where = f"{what} state of parameter {pid}"
        required = _required_state(optimizer, own)
        if required is not None and entry and set(entry) != required:
            raise CheckpointError(f"checkpoint {where} holds {', '.join(sorted(entry))}; this "
                                  f"optimizer keeps {', '.join(sorted(required))}")
        for key, value in entry.items():
            if key != "step" and value.shape != param.shape:
                raise CheckpointError(f"checkpoint {where}: {key} has shape {tuple(value.shape)}, "
                                      f"the parameter's is {tuple(param.shape)}")
    return {"state": state, "param_groups": new_groups}


def guard_optimizer(optimizer: torch.optim.Optimizer, what: str = "optimizer") -> torch.optim.Optimizer:
    """`optimizer`, whose `load_state_dict` from now on checks what it is given first
    (`checked_optimizer_state`) and raises CheckpointError for a state that does not fit."""
    def check(opt: torch.optim.Optimizer, saved: Mapping[str, Any]) -> dict[str, Any]:
        return checked_optimizer_state(opt, saved, what)

    optimizer.register_load_state_dict_pre_hook(check)
    return optimizer
