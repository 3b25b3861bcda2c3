"""How the runtime's time per token grows with the context length, with and without the cache.

The baby width and depth (6 layers, 6 heads, 384 wide) with a 1024-token context, exported once.
For each length T: one cached decode step as the sampler takes it (one new token after T-1
positions in the in-place cache, runtime/gpt.py; the weights dominate, attention over
the cache grows linearly) against recomputing all T positions without a cache (what a sampler
without a KV cache pays per token; grows at least linearly in T).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from benchmarks.report import Row
from benchmarks.sampling_speed import BABY, bench_model
from textgen_core.models.gpt import GPTConfig

LENGTHS = (64, 128, 256, 512, 1024)


def _best_seconds(call, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - t0)
    return best


def run(workdir: Path, lengths: tuple[int, ...] = LENGTHS, repeats: int = 7) -> list[Row]:
    from export.gpt import export_gpt_onnx
    from runtime.gpt import OnnxGPT

    model, tokenizer = bench_model(GPTConfig(**{**BABY.to_dict(), "block_size": max(lengths)}))
    onnx_model = OnnxGPT(export_gpt_onnx(model, tokenizer, workdir / "scaling.onnx"))
    rng = np.random.default_rng(0)
    rows: list[Row] = []
    for length in lengths:
        ids = rng.integers(0, tokenizer.vocab_size, (1, length), dtype=np.int64)
        cache = onnx_model.cache_buffers()  # the sampler's cache (rotary: extended in place)
        cache.forward(ids[:, :-1])

        def step(ids=ids, cache=cache, length=length) -> None:
            cache.length = cache.position = length - 1  # each timing reads after the same T-1
            cache.forward(ids[:, -1:])

        cached = _best_seconds(step, repeats)
        full = _best_seconds(lambda ids=ids: onnx_model.forward(ids, onnx_model.empty_past()),
                             max(2, repeats // 2))
        rows += [
            Row("sampling-scaling", f"ctx {length}: no cache", 1 / full, "tok/s",
                note=f"{full * 1e3:.2f} ms/token"),
            Row("sampling-scaling", f"ctx {length}: KV cache", 1 / cached, "tok/s",
                reference=f"ctx {length}: no cache", note=f"{cached * 1e3:.2f} ms/token"),
        ]
    return rows
