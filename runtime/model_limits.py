"""Bounds on the sizes an untrusted model file declares, checked before anything is allocated.

A file's model config drives what the runtime allocates and loops over (one cache buffer pair
per layer, noise of seq_len x n_embd, a window of block_size positions), so every size is held
to two limits before the onnxruntime session or any array exists:

- each size is a whole number (JSON `Infinity`, `NaN`, `3.5`, `"12"` and `true` are refused) in
  1..its constant in `LIMITS`, far above any model this project trains;
- the memory one generation needs at full context (`activation_bytes`: the key/value cache,
  the logits and the attention scores of a full window, float32) must fit in `MEMORY_SHARE` of
  the machine's physical memory (`machine_memory`; `FALLBACK_MEMORY` where the system does not
  say).

A value too large to print (a 4,000-digit number) is described by its length, never formatted.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from runtime.errors import ModelFileError

LIMITS = {
    "n_layer": 1024,
    "n_head": 1024,
    "n_embd": 65_536,
    "hidden_size": 65_536,
    "in_features": 65_536,
    "out_features": 2_097_152,
    "ffn_factor": 64,
    "ffn_hidden": 262_144,
    "block_size": 1_048_576,
    "seq_len": 65_536,
    "vocab_size": 2_097_152,
    "n_mapping": 1024,
    "n_noise_blocks": 1024,
    "n_output_blocks": 1024,
    "layers": 1024,
}
MEMORY_SHARE = 0.5
FALLBACK_MEMORY = 8 * 2**30


def machine_memory() -> int:
    """Physical memory in bytes, or FALLBACK_MEMORY where the system does not report it."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return FALLBACK_MEMORY


def shown(value: object) -> str:
    """`value` as a message may print it: short, and never str() of a huge int."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**12:
        digits = int((abs(value).bit_length() - 1) * 0.30102999566398) + 1
        digits += abs(value) >= 10**digits  # the estimate can fall one short
        return f"a {digits}-digit number"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def bounded_size(path: Path, config: dict[str, Any], key: str, what: str = "model config",
                 limit_key: str | None = None) -> int:
    """config[key] as an int in 1..LIMITS[limit_key or key]; a one-line ModelFileError otherwise."""
    value = config.get(key)
    limit = LIMITS[limit_key or key]
    if isinstance(value, bool) or not isinstance(value, int):
        raise ModelFileError(f"{path}: its {what} lacks a valid {key!r} (a whole number is "
                             f"needed, found {shown(value)})")
    if not 1 <= value <= limit:
        raise ModelFileError(f"{path}: its {what} sets {key} to {shown(value)}; this runtime "
                             f"accepts 1 to {limit:,}")
    return value


def activation_bytes(*, context: int, width: int, vocab: int, heads: int) -> int:
    """float32 bytes of what one generation holds at full `context`: `width` floats per
    position (the key/value cache of every layer, or the stack's layer outputs), the logits,
    and one (context x context) attention score matrix per head."""
    return 4 * (context * (width + vocab) + heads * context * context)


def check_memory(path: Path, needed: int) -> None:
    budget = int(machine_memory() * MEMORY_SHARE)
    if needed > budget:
        raise ModelFileError(
            f"{path}: its model config needs about {needed / 2**30:,.1f} GiB to generate at full "
            f"context, more than this runtime allows ({MEMORY_SHARE:.0%} of this machine's "
            f"{machine_memory() / 2**30:,.1f} GiB); the file is damaged or not meant for it")
