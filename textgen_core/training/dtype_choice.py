"""Which dtype a GPT training step computes in: chosen by measurement on a CPU, cached, recorded.

On CUDA and MPS the rule of textgen_core/training/device.py holds (bf16 where the device has it).
On a CPU neither choice wins everywhere: bf16 autocast is ~2x faster where the cores multiply
bf16 natively (AVX512-BF16, AMX) at some shapes and slower at others, and emulated bf16 is slower
than fp32. So `--dtype auto` (the default) times a few training steps of the run's own shape in
fp32 and in bf16, in alternating rounds, and takes the faster; the result is cached per CPU,
torch version, thread count and shape (`training-dtype.json` in the textgen cache), so a run
measures once. The choice is recorded in the checkpoint (`train_state.compute_dtype`, with
`compute_device` the device type), and `--resume` on the same kind of device computes the same
way whatever the cache now says. `--dtype fp32|bf16` skips the
measurement. Evaluation always reports fp32 losses on a CPU.
"""

from __future__ import annotations

import json
import platform
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from runtime.atomic_file import write_atomic
from runtime.cache_dir import cache_dir
from runtime.regular_file import CONFIG_LIMIT, read_regular
from textgen_core.errors import CheckpointError
from textgen_core.models.gpt import GPT, GPTConfig
from textgen_core.training.device import training_dtype

DTYPES: dict[str, torch.dtype | None] = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
CHOICES = ("auto", "fp32", "bf16")
CACHE_NAME = "training-dtype.json"
ROUNDS = 3  # timed rounds of each dtype, alternating
STEPS_PER_ROUND = 2
# A run whose steps take more than RECHECK_FACTOR times (or less than 1/RECHECK_FACTOR of) what
# the cached measurement said re-measures (training/gpt.py), so a choice made under load does not
# stick.
RECHECK_FACTOR = 3.0
RECHECK_AFTER = 3  # steps: the first is left out of the timing (allocation, kernel choice)


def dtype_name(dtype: torch.dtype | None) -> str:
    return next(name for name, value in DTYPES.items() if value == dtype)


def choose(device: torch.device, config: GPTConfig, batch_size: int, *, requested: str = "auto",
           saved: Any = None, saved_device: Any = None) -> str:
    """The dtype name ("fp32", "bf16" or "fp16") a run's training steps compute in. `saved` and
    `saved_device` are a resumed checkpoint's `compute_dtype` and `compute_device`."""
    decided = decided_without_measuring(device, config, batch_size, requested=requested,
                                        saved=saved, saved_device=saved_device)
    return decided if decided is not None else measured_choice(config, batch_size)


@dataclass(frozen=True)
class DtypeDecision:
    """`choice` (None: it must be measured now), why (given, saved, device, cached) and, for a
    cached choice, the milliseconds per step of fp32 and bf16 it was measured at."""

    choice: str | None
    reason: str
    timings: dict[str, float] | None = None


def decided_without_measuring(device: torch.device, config: GPTConfig, batch_size: int, *,
                              requested: str = "auto", saved: Any = None,
                              saved_device: Any = None) -> str | None:
    """`choose`'s answer where it needs no measurement (a requested dtype, one saved on this
    kind of device, a GPU, a cached result), else None. A distributed run asks this on every
    rank and measures on rank 0 alone, so that the ranks do not time their steps against each
    other. A dtype saved on another kind of device (a CPU run resumed on a GPU) is chosen anew:
    what was faster there says nothing here, and fp16 is for CUDA only."""
    return decision(device, config, batch_size, requested=requested, saved=saved,
                    saved_device=saved_device).choice


def decision(device: torch.device, config: GPTConfig, batch_size: int, *, requested: str = "auto",
             saved: Any = None, saved_device: Any = None) -> DtypeDecision:
    """`decided_without_measuring`'s answer with its reason."""
    if requested != "auto":
        return DtypeDecision(requested, "given")
    if saved is not None:
        if not isinstance(saved, str) or saved not in DTYPES:
            raise CheckpointError(f"the checkpoint's train_state.compute_dtype is {str(saved)[:40]!r}; "
                                  f"expected one of {', '.join(DTYPES)}")
        if saved_device is not None and not isinstance(saved_device, str):
            raise CheckpointError("the checkpoint's train_state.compute_device is "
                                  f"{str(saved_device)[:40]!r}; expected a device type such as 'cpu'")
        if saved_device in (None, device.type):  # None: written before the device was recorded
            return DtypeDecision(saved, "saved")
    if device.type != "cpu":
        return DtypeDecision(dtype_name(training_dtype(device)), "device")
    cached = _read_cache().get(_cache_key(config, batch_size))
    if isinstance(cached, dict) and cached.get("choice") in ("fp32", "bf16"):
        timings = {k: cached.get(f"{k}_ms_per_step") for k in ("fp32", "bf16")}
        return DtypeDecision(cached["choice"], "cached",
                             timings if all(isinstance(v, (int, float)) and v > 0
                                            for v in timings.values()) else None)
    return DtypeDecision(None, "measured")


def measured_choice(config: GPTConfig, batch_size: int) -> str:
    """The faster of fp32 and bf16 for this CPU training step, measured now and cached."""
    timings = measured_timings(config, batch_size)
    return min(timings, key=timings.__getitem__)


def measured_timings(config: GPTConfig, batch_size: int) -> dict[str, float]:
    """Milliseconds per CPU training step in fp32 and bf16, measured now; the faster is cached
    as this shape's choice."""
    timings = {k: round(v * 1e3, 2) for k, v in measure(config, batch_size).items()}
    choice = min(timings, key=timings.__getitem__)
    _write_cache(_cache_key(config, batch_size),
                 {"choice": choice, **{f"{k}_ms_per_step": v for k, v in timings.items()}})
    return timings


def far_from_measured(step_ms: float, decided: DtypeDecision, factor: float = RECHECK_FACTOR) -> bool:
    """Whether a run's steps (`step_ms` per micro-step) are so far from what the cached
    measurement said for its choice that the measurement is not this machine as it is now (it
    ran under load, or on other cores): then the choice is measured again."""
    if decided.reason != "cached" or not decided.timings or decided.choice not in decided.timings:
        return False
    expected = decided.timings[decided.choice]
    return step_ms > expected * factor or step_ms * factor < expected


def measure(config: GPTConfig, batch_size: int) -> dict[str, float]:
    """Median seconds of one CPU training step (forward, backward, AdamW) in fp32 and in bf16.
    The run's random streams are left as they were."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return _measure(config, batch_size)


def _measure(config: GPTConfig, batch_size: int) -> dict[str, float]:
    model = GPT(config).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    x = torch.randint(config.vocab_size, (batch_size, config.block_size))

    def step(dtype: torch.dtype | None) -> None:
        with torch.autocast("cpu", dtype=dtype or torch.float32, enabled=dtype is not None):
            _, loss, _ = model(x, x)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    times: dict[str, list[float]] = {"fp32": [], "bf16": []}
    for name in times:  # warm-up: first calls allocate and pick kernels
        step(DTYPES[name])
    for r in range(ROUNDS):
        for name in (list(times) if r % 2 == 0 else list(reversed(times))):
            t0 = time.perf_counter()
            for _ in range(STEPS_PER_ROUND):
                step(DTYPES[name])
            times[name].append((time.perf_counter() - t0) / STEPS_PER_ROUND)
    return {name: statistics.median(values) for name, values in times.items()}


def cache_path() -> Path:
    return cache_dir() / CACHE_NAME


def _cache_key(config: GPTConfig, batch_size: int) -> str:
    shape = (f"L{config.n_layer} H{config.n_head} C{config.n_embd} T{config.block_size} "
             f"V{config.vocab_size} B{batch_size} {config.positions} yoke={config.yoke or '-'}")
    return f"{_cpu_name()} | torch {torch.__version__} | {torch.get_num_threads()} threads | {shape}"


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.partition(":")[2].strip()[:100]
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _read_cache() -> dict[str, Any]:
    """The cached choices; a missing, unreadable or malformed file is an empty cache."""
    try:
        data = json.loads(read_regular(cache_path(), CONFIG_LIMIT))
    except (OSError, ValueError, RecursionError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_cache(key: str, entry: dict[str, Any]) -> None:
    data = _read_cache()
    data[key] = entry
    try:
        cache_path().parent.mkdir(parents=True, exist_ok=True)
        write_atomic(cache_path(), json.dumps(data, indent=1, sort_keys=True).encode())
    except OSError:
        pass  # a read-only cache costs a measurement next time, nothing else
