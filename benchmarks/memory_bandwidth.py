"""Main-memory bandwidth of this machine, the basis of the batch-1 sampling bound.

Batch-1 decoding reads every weight once per token and does ~2 FLOPs per weight, so its speed
limit is bytes of weights / memory bandwidth. Method: numpy on a 512 MiB array (far beyond any
cache), each way:
- copy: `np.copyto`, counting the bytes read plus the bytes written (STREAM "copy" convention);
- read: `arr.sum()`, counting the bytes read;
each on one thread and on one thread per core at once (numpy releases the GIL in both). The bound
uses the HIGHEST rate measured, so it is the strictest of these ceilings.

`BandwidthProbe` keeps its arrays, so a benchmark can take one sample between its own timings
and compare each against the bandwidth of the same moment (on a shared machine both move).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable

import numpy as np

SIZE_MIB = 512


def _timed_parallel(work: list[Callable[[], object]]) -> float:
    threads = [threading.Thread(target=w) for w in work]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - t0


class BandwidthProbe:
    """Two touched arrays of `size_mib` (so no page faults are timed) and the four methods."""

    def __init__(self, size_mib: int = SIZE_MIB) -> None:
        self.workers = max(1, os.cpu_count() or 1)
        n = size_mib * 1024 * 1024 // 8
        self.src, self.dst = np.ones(n), np.ones(n)
        bounds = [(i * n // self.workers, (i + 1) * n // self.workers) for i in range(self.workers)]
        self.chunks = [(self.src[a:b], self.dst[a:b]) for a, b in bounds]

    def sample(self) -> dict[str, float]:
        """GB/s of each method (`copy-1t`, `read-1t`, `copy-Nt`, `read-Nt`), one pass each, and
        `best`, the highest of them."""
        src, dst, w = self.src, self.dst, self.workers
        runs = {
            "copy-1t": ([lambda: np.copyto(dst, src)], 2),
            "read-1t": ([lambda: src.sum()], 1),
            f"copy-{w}t": ([lambda a=a, b=b: np.copyto(b, a) for a, b in self.chunks], 2),
            f"read-{w}t": ([lambda a=a: a.sum() for a, _ in self.chunks], 1),
        }
        rates = {name: passes * src.nbytes / _timed_parallel(work) / 1e9
                 for name, (work, passes) in runs.items()}
        rates["best"] = max(rates.values())
        return rates


def measure(size_mib: int = SIZE_MIB, repeats: int = 5) -> dict[str, float]:
    """GB/s for each method and `best`: the highest of `repeats` samples of each."""
    probe = BandwidthProbe(size_mib)
    best: dict[str, float] = {}
    for _ in range(repeats):
        for name, rate in probe.sample().items():
            best[name] = max(best.get(name, 0.0), rate)
    return best
