"""How large a model a checkpoint may declare: every size is bounded before anything is allocated.

A checkpoint's `model_config` comes from whoever wrote the file: `n_layer` 10^9 would build
modules for hours, `n_embd` 2*10^6 would ask for terabytes, a bool or a 4,000-digit number where
an int belongs would end in a traceback deep inside torch. So a model is rebuilt from a
checkpoint in four steps, each one before the next can cost anything:

1. every setting has the type its config field declares (an int is an int, not a bool; a float
   is finite), read from the config dataclass itself;
2. what costs time rather than memory is capped by constants: at most MAX_LAYERS layers of each
   kind, contexts of at most MAX_CONTEXT positions;
3. the model is built on the meta device (shapes, no memory) and its parameters and buffers must
   fit in MEMORY_FRACTION of this machine's physical memory;
4. the stored weights must have exactly the names and shapes of that model, each a dense
   floating-point tensor; only then is the real model built and the weights copied in.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import fields
from typing import Any, TypeVar

import torch
from torch import nn

from textgen_core.errors import CheckpointError, ConfigError
from textgen_core.models.checkpoint_checks import check_dense_tensor, load_weights

MAX_LAYERS = 256  # of each kind (GPT blocks, GAN mapping/noise/output/critic blocks, stack layers)
MAX_CONTEXT = 1 << 20  # positions: GPT and stack block_size, GAN seq_len
MEMORY_FRACTION = 0.5  # of physical memory, for the parameters and buffers of one model
# Buffers are computed through float64 temporaries (the rotary tables: angles, cos, sin), so
# building one takes about this many times its final size.
_BUFFER_PEAK = 4

M = TypeVar("M", bound=nn.Module)

_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "int": (int,), "float": (int, float), "bool": (bool,), "str": (str,),
}


def physical_memory() -> int | None:
    """Bytes of physical memory, or None where the system does not say (then only the shape
    checks bound what a checkpoint can make us allocate)."""
    try:
        pages, page_size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None
    return pages * page_size if pages > 0 and page_size > 0 else None


def _describe(value: Any) -> str:
    if isinstance(value, int) and value.bit_length() > 64:  # repr of a huge int is slow or refused
        return f"an integer of {int(value.bit_length() * math.log10(2)) + 1} digits"
    text = repr(value) if isinstance(value, (int, float, str, bool, type(None))) else type(value).__name__
    return text if len(text) <= 40 else text[:37] + "..."


def check_setting_types(config_cls: type, data: Any, what: str = "model_config") -> dict[str, Any]:
    """`data` as a dict whose values have the types `config_cls`'s fields declare (int fields
    refuse bools and floats, float fields refuse NaN and infinities); unknown names are left to
    the config's own `from_dict`, which names them."""
    if not isinstance(data, Mapping):
        raise CheckpointError(f"checkpoint {what} is not a table of settings "
                              f"(got {type(data).__name__})")
    for field in fields(config_cls):
        allowed = _FIELD_TYPES.get(str(field.type))
        if allowed is None or field.name not in data:
            continue
        value = data[field.name]
        fits = isinstance(value, allowed) and (field.type == "bool" or not isinstance(value, bool))
        if fits and isinstance(value, float) and not math.isfinite(value):
            fits = False
        if not fits:
            article = "an" if str(field.type)[0] in "aeiou" else "a"
            finite = "finite " if field.type == "float" else ""
            raise CheckpointError(f"checkpoint {what} setting {field.name!r} must be {article} "
                                  f"{finite}{field.type}, got {_describe(value)}")
    return dict(data)


def check_counts(config: Any, layers: tuple[str, ...] = (), contexts: tuple[str, ...] = (),
                 fresh: bool = False) -> None:
    """The settings named in `layers` are at most MAX_LAYERS, those in `contexts` at most
    MAX_CONTEXT (attributes of a validated config, so plain ints). `fresh`: the settings of a new
    run, refused with a ConfigError naming the flag instead of the checkpoint."""
    error: type[Exception] = ConfigError if fresh else CheckpointError

    def named(name: str) -> str:
        return f"--{name.replace('_', '-')}" if fresh else f"checkpoint model_config {name}"

    for name in layers:
        value = getattr(config, name)
        if value > MAX_LAYERS:
            raise error(f"{named(name)} is {value:,}; textgen builds at most {MAX_LAYERS} layers of a kind")
    for name in contexts:
        value = getattr(config, name)
        if value > MAX_CONTEXT:
            raise error(f"{named(name)} is {value:,}; textgen supports contexts of at most "
                        f"{MAX_CONTEXT:,} positions")


def check_new_model(build: Callable[[], nn.Module], config: Any, layers: tuple[str, ...] = (),
                    contexts: tuple[str, ...] = ()) -> None:
    """A fresh run's model is bounded by the same limits as a checkpoint's: its layer counts and
    contexts first, then a shape-only build (no memory) must fit in MEMORY_FRACTION of this
    machine's memory. ConfigError naming the flag; call it before the model is built."""
    check_counts(config, layers, contexts, fresh=True)
    try:
        with torch.device("meta"):
            shell = build()
    except (RuntimeError, OverflowError, ValueError, TypeError) as exc:  # sizes torch cannot hold
        raise ConfigError(f"these settings make a model too large to build ({str(exc)[:120]})") from None
    check_memory(shell, fresh=True)


def _size(n_bytes: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n_bytes < 1024 or unit == "PiB":
            return f"{n_bytes:,.0f} {unit}" if unit == "bytes" else f"{n_bytes:,.1f} {unit}"
        n_bytes /= 1024
    raise AssertionError("unreachable")


def check_memory(shell: nn.Module, memory: int | None = None, fresh: bool = False) -> None:
    """`shell` (built on the meta device) fits in MEMORY_FRACTION of `memory` (default: this
    machine's physical memory)."""
    memory = physical_memory() if memory is None else memory
    if memory is None:
        return
    params = sum(p.numel() for p in shell.parameters())
    needed = (sum(p.numel() * p.element_size() for p in shell.parameters())
              + _BUFFER_PEAK * sum(b.numel() * b.element_size() for b in shell.buffers()))
    if needed > MEMORY_FRACTION * memory:
        subject = "these settings make" if fresh else "checkpoint declares"
        raise (ConfigError if fresh else CheckpointError)(
            f"{subject} a model that needs {_size(needed)} ({params:,} parameters), more "
            f"than {MEMORY_FRACTION:.0%} of this machine's {_size(memory)} of memory")


def check_weights_fit(shell: nn.Module, state: Any, what: str = "the model") -> None:
    """The stored `state` has exactly `shell`'s state_dict names and shapes, each a dense
    floating-point tensor (checked before the real model is allocated)."""
    if not isinstance(state, Mapping):
        raise CheckpointError(f"checkpoint weights of {what} are not a table of tensors "
                              f"(got {type(state).__name__})")
    expected = shell.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [str(k) for k in state if k not in expected]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {', '.join(missing[:3])}" + (" ..." if len(missing) > 3 else ""))
        if unexpected:
            parts.append(f"unexpected {', '.join(repr(k)[:60] for k in unexpected[:3])}"
                         + (" ..." if len(unexpected) > 3 else ""))
        raise CheckpointError(f"checkpoint weights do not fit {what}: {'; '.join(parts)}")
    for name, tensor in expected.items():
        stored = check_dense_tensor(state[name], f"weight {name}")
        if stored.shape != tensor.shape:
            raise CheckpointError(f"checkpoint weights do not fit {what}: {name} has shape "
                                  f"{tuple(stored.shape)}, the model's is {tuple(tensor.shape)}")


def build_checked(build: Callable[[], M], state: Any, what: str = "the model") -> M:
    """`build()` with the stored weights `state` loaded, once a shape-only build shows that the
    model fits in memory and that the weights fit the model."""
    with torch.device("meta"):
        shell = build()
    check_memory(shell)
    check_weights_fit(shell, state, what)
    del shell
    model = build()
    load_weights(model, state, what)
    return model
