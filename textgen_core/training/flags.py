"""A setting's command-line spelling (`max_iters` -> `--max-iters`), so that every error about a
setting names the flag the user types, and the integer check the training configs share."""

from __future__ import annotations

from typing import Any

from textgen_core.errors import ConfigError


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def flag_list(names: list[str]) -> str:
    return ", ".join(flag(n) for n in names)


MAX_SETTING = (1 << 63) - 1  # a setting's integers fit in 64 bits, as a checkpoint's do


def require_int(name: str, value: Any, minimum: int, maximum: int = MAX_SETTING) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        bound = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise ConfigError(f"{flag(name)} must be {bound}, got {value!r:.40}")
    if value > maximum:
        raise ConfigError(f"{flag(name)} must be at most {maximum:,}, got {value:,}"[:200])
