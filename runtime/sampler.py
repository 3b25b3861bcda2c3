"""Choosing the next token from logits, in numpy: the one rule both samplers use.

Defined behaviour at the edges:
- temperature 0 is greedy (argmax; ties go to the lowest id), and so is any temperature below
  GREEDY_BELOW (dividing by it would overflow); negative, infinite or NaN is refused;
- top_k None or 0 is off, and top_k >= vocabulary size is off;
- top_p must be in (0, 1]; 1 is off; the smallest set of most likely tokens whose probability
  reaches top_p is kept (always at least one token);
- repetition_penalty 1 is off; > 1 makes tokens already in the context less likely (CTRL,
  Keskar et al. 2019: positive logits divided, negative multiplied);
- NaN logits count as -inf; +inf logits are the only candidates (shared equally); if no logit is
  finite or +inf, token 0 is chosen. Probabilities are computed in float64.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from runtime.errors import SamplingError

GREEDY_BELOW = 1e-6
# Tokens per sample (and per chat reply) when --max-new-tokens is not given: nanoGPT sample.py's.
DEFAULT_MAX_NEW_TOKENS = 500


@dataclass(frozen=True)
class SamplingSettings:
    temperature: float = 0.8
    top_k: int | None = None
    top_p: float | None = None
    repetition_penalty: float = 1.0

    def __post_init__(self) -> None:
        t = self.temperature
        if not isinstance(t, (int, float)) or math.isnan(t) or t < 0 or math.isinf(t):
            raise SamplingError(f"--temperature must be a finite number >= 0, got {t}")
        if self.top_k is not None and (isinstance(self.top_k, bool) or self.top_k < 0):
            raise SamplingError(f"--top-k must be >= 0 (0 turns it off), got {self.top_k}")
        p = self.top_p
        if p is not None and (math.isnan(p) or not 0.0 < p <= 1.0):
            raise SamplingError(f"--top-p must be in (0, 1], got {p}")
        r = self.repetition_penalty
        if math.isnan(r) or math.isinf(r) or r <= 0:
            raise SamplingError(f"--repetition-penalty must be a finite number > 0, got {r}")


def validate_max_new_tokens(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SamplingError(f"--max-new-tokens must be a positive integer, got {value}")
    return value


def sample_next(
    logits: np.ndarray,
    settings: SamplingSettings,
    rng: np.random.Generator,
    previous_ids: Iterable[int] = (),
) -> int:
    """One token id in [0, len(logits)) drawn from `logits` (1-d) under `settings`."""
    logits = np.asarray(logits)
    if settings.temperature < GREEDY_BELOW and settings.repetition_penalty == 1.0 and logits.size:
        # Greedy without a penalty, the decode loop's hot case, without the float64 copy:
        # argmax finds the first +inf, or the first largest finite logit, exactly as below; it
        # stops at a NaN, which the rules below count as -inf.
        index = int(logits.argmax())
        value = logits[index]
        if value == value:  # not NaN
            return index
    scores = logits.astype(np.float64)  # a copy
    scores[np.isnan(scores)] = -np.inf
    if settings.repetition_penalty != 1.0:
        seen = np.unique(np.fromiter(previous_ids, dtype=np.int64))
        seen = seen[(seen >= 0) & (seen < scores.size)]
        values = scores[seen]
        scores[seen] = np.where(values > 0, values / settings.repetition_penalty,
                                values * settings.repetition_penalty)
    positive_inf = np.isposinf(scores)
    if positive_inf.any():
        candidates = np.flatnonzero(positive_inf)
        if settings.temperature < GREEDY_BELOW:
            return int(candidates[0])
        return int(rng.choice(candidates))
    if not np.isfinite(scores).any():
        return 0
    if settings.temperature < GREEDY_BELOW:
        return int(np.argmax(scores))
    scores = scores / settings.temperature
    k = settings.top_k
    if k and k < scores.size:
        kth_largest = np.partition(scores, -k)[-k]
        scores[scores < kth_largest] = -np.inf
    probs = np.exp(scores - scores.max())
    probs /= probs.sum()
    if settings.top_p is not None and settings.top_p < 1.0:
        order = np.argsort(-probs, kind="stable")
        cumulative = np.cumsum(probs[order])
        keep = int(np.searchsorted(cumulative, settings.top_p)) + 1
        mask = np.zeros_like(probs, dtype=bool)
        mask[order[:keep]] = True
        probs = np.where(mask, probs, 0.0)
        probs /= probs.sum()
    # Inverse-CDF draw with one uniform number per token; the first index whose cumulative
    # probability exceeds the draw always has probability > 0.
    cdf = np.cumsum(probs)
    index = int(np.searchsorted(cdf, rng.random() * cdf[-1], side="right"))
    return min(index, scores.size - 1)


def sample_rows(
    logits: np.ndarray,
    settings: Sequence[SamplingSettings],
    rngs: Sequence[np.random.Generator],
    previous_ids: Sequence[Iterable[int]] | None = None,
) -> list[int]:
    """Row i's token exactly as `sample_next(logits[i], settings[i], rngs[i], previous_ids[i])`
    chooses it, with the same draw from rngs[i]: a batch decode step (runtime/decode.py) and the
    serving engine's running batch (runtime/scheduler.py) choose every row's token here.

    The common rows (finite logits, no repetition penalty, no top-p) are chosen together, a few
    array operations for the whole batch instead of a dozen per row; each of those operations
    gives every row the bits sample_next's 1-d operation gives it (elementwise arithmetic and
    exp, a max, partition and sum along the row, a running sum, a count for the search), which
    tests/runtime/test_sampler.py checks on random rows. The other rows call sample_next."""
    logits = np.asarray(logits)
    count = len(settings)
    if logits.ndim != 2 or logits.shape[0] != count or len(rngs) != count:
        raise ValueError("sample_rows takes one row of logits, settings and generator per row")
    if count == 1:  # one row (a run of its own): sample_next itself, greedy's fast path included
        return [sample_next(logits[0], settings[0], rngs[0],
                            () if previous_ids is None else previous_ids[0])]
    tokens = [0] * count
    finite = np.isfinite(logits).all(axis=1) if logits.shape[1] else np.zeros(count, bool)
    greedy, drawn = [], []
    for i, row_settings in enumerate(settings):
        if not finite[i] or row_settings.repetition_penalty != 1.0 or (
                row_settings.top_p is not None and row_settings.top_p < 1.0):
            tokens[i] = sample_next(logits[i], row_settings, rngs[i],
                                    () if previous_ids is None else previous_ids[i])
        elif row_settings.temperature < GREEDY_BELOW:
            greedy.append(i)
        else:
            drawn.append(i)
    if greedy:
        for i, token in zip(greedy, logits[greedy].argmax(axis=1).tolist(), strict=True):
            tokens[i] = token
    if drawn:
        temperatures = np.array([settings[i].temperature for i in drawn], dtype=np.float64)
        scores = logits[drawn].astype(np.float64) / temperatures[:, None]
        size = scores.shape[1]
        top_ks = [settings[i].top_k for i in drawn]
        for k in set(top_ks):
            if not k or k >= size:
                continue
            rows = [r for r, row_k in enumerate(top_ks) if row_k == k]
            kth_largest = np.partition(scores[rows], -k, axis=1)[:, -k, None]
            scores[rows] = np.where(scores[rows] < kth_largest, -np.inf, scores[rows])
        probs = np.exp(scores - scores.max(axis=1, keepdims=True))
        probs /= probs.sum(axis=1, keepdims=True)
        cdf = np.cumsum(probs, axis=1)
        draws = np.array([rngs[i].random() for i in drawn]) * cdf[:, -1]
        # searchsorted(cdf, draw, side="right") for a non-decreasing cdf: entries <= the draw.
        chosen = np.minimum((cdf <= draws[:, None]).sum(axis=1), size - 1)
        for i, token in zip(drawn, chosen.tolist(), strict=True):
            tokens[i] = token
    return tokens


# The random seed a user may give (`--seed N`, `/seed N`): an integer in [0, 2**32), the range
# that numpy's and torch's generators both take, so one seed gives the same text on both sides.
SEED_LIMIT = 2**32


def validate_seed(value: int | None, name: str = "--seed") -> int | None:
    """`value` unchanged when it is None (a fresh random seed) or in [0, SEED_LIMIT)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < SEED_LIMIT:
        shown = repr(value) if not isinstance(value, int) or value.bit_length() < 64 else "a huge number"
        raise SamplingError(f"{name} must be an integer from 0 to {SEED_LIMIT - 1}, got {shown}")
    return value
