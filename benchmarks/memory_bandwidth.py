"""Main-memory bandwidth of this machine, the basis of the batch-1 sampling bound.

Batch-1 decoding reads every weight once per token and does ~2 FLOPs per weight, so its speed
limit is bytes of weights / memory bandwidth. Method: numpy on a 512 MiB array (far beyond any
cache), best of several repeats, each way:
- copy: `np.copyto`, counting the bytes read plus the bytes written (STREAM "copy" convention);
- read: `arr.sum()`, counting the bytes read;
each on one thread and on one thread per core at once (numpy releases the GIL in both). The bound
uses the HIGHEST rate measured, so it is the strictest of these ceilings.
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


def measure(size_mib: int = SIZE_MIB, repeats: int = 5) -> dict[str, float]:
    """GB/s for each method (`copy-1t`, `read-1t`, `copy-Nt`, `read-Nt`) and `best`."""
    workers = max(1, os.cpu_count() or 1)
    n = size_mib * 1024 * 1024 // 8
    src, dst = np.ones(n), np.ones(n)  # touched now, so no page faults are timed
    chunks = [(src[i * n // workers:(i + 1) * n // workers], dst[i * n // workers:(i + 1) * n // workers])
              for i in range(workers)]
    best: dict[str, float] = {}
    for _ in range(repeats):
        runs = {
            "copy-1t": (lambda: [np.copyto(dst, src)], 2),
            "read-1t": (lambda: [src.sum()], 1),
            f"copy-{workers}t": ([lambda a=a, b=b: np.copyto(b, a) for a, b in chunks], 2),
            f"read-{workers}t": ([lambda a=a: a.sum() for a, _ in chunks], 1),
        }
        for name, (work, passes) in runs.items():
            seconds = _timed_parallel(work if isinstance(work, list) else [work])
            best[name] = max(best.get(name, 0.0), passes * src.nbytes / seconds / 1e9)
    best["best"] = max(best.values())
    return best
