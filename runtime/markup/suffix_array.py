"""Suffix array of an integer sequence by prefix doubling, in numpy.

Manber & Myers' idea with numpy sorts: rank every suffix by its first k symbols, then by its
first 2k (the pair rank[i], rank[i + k]), until all ranks differ. The first round packs as many
symbols as fit into one int64, so a text whose longest repeat is R symbols needs about
log2(R / 9) + 1 sorts of n int64 keys: a few seconds for the 5 MB Shakespeare corpus, built once
and cached by copy_index.py.

Order: a suffix that ends is smaller than any longer one sharing its prefix, and symbols compare
as integers, which is how Python compares strings of code points.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

MAX_KEY_BITS = 62


def suffix_array(codes: np.ndarray, on_round: Callable[[int], None] | None = None) -> np.ndarray:
    """Start offsets of the suffixes of `codes` in sorted order (int32 when it fits)."""
    n = len(codes)
    index_dtype = np.int32 if n < 2**31 else np.int64
    if n == 0:
        return np.zeros(0, dtype=index_dtype)
    # Dense ranks 1..u; 0 stands for "past the end", smaller than every symbol.
    _, dense = np.unique(codes, return_inverse=True)
    dense = dense.astype(np.int64).reshape(-1) + 1
    base = int(dense.max()) + 1
    width = max(1, min(n, int(MAX_KEY_BITS // np.log2(base)) if base > 1 else 1))
    key = np.zeros(n, dtype=np.int64)
    for j in range(width):
        shifted = np.zeros(n, dtype=np.int64)
        shifted[: n - j] = dense[j:]
        key = key * base + shifted
    order, rank, distinct = _rank_by(key)
    k = width
    rounds = 1
    while distinct < n and k < n:
        if on_round is not None:
            on_round(rounds)
        second = np.zeros(n, dtype=np.int64)
        second[: n - k] = rank[k:]
        # rank and second are both <= n, so the pair fits one int64 for any n below 3e9.
        order, rank, distinct = _rank_by(rank * (n + 1) + second)
        k *= 2
        rounds += 1
    return order.astype(index_dtype)


def _rank_by(key: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Sort order of `key`, each position's dense rank (1-based), and the number of ranks."""
    order = np.argsort(key)  # ties get one rank, so their order does not matter
    sorted_key = key[order]
    ranks_sorted = np.empty(len(key), dtype=np.int64)
    ranks_sorted[0] = 1
    np.cumsum(sorted_key[1:] != sorted_key[:-1], out=ranks_sorted[1:])
    ranks_sorted[1:] += 1
    rank = np.empty_like(ranks_sorted)
    rank[order] = ranks_sorted
    return order, rank, int(ranks_sorted[-1])
