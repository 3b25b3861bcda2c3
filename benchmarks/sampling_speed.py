"""Sampling tokens/s for one set of weights, batch 1, greedy, nanoGPT's baby shape:

- nanoGPT-style torch sampling: the whole context recomputed for every new token (reference);
- torch with our KV cache (`textgen_core.sampling.generate`);
- the runtime on the fp32 ONNX file and on the int8 one (`runtime.load(...).generate`), end to
  end: prompt prefill, every decode step, the numpy sampler and detokenisation; the model has
  rotary positions (the default), so a full window rolls its cache (runtime/window.py);
- the same fp32 runtime on a model with nanoGPT's learned positions, which re-reads 3/4 of the
  window each time it is full: what rolling saves;
- the runtime's CPU time per token on one thread, which other processes on a shared machine
  do not inflate the way they inflate wall time;
- the weight-read bound: fp32 weight bytes / memory bandwidth (benchmarks/memory_bandwidth.py),
  the fastest any batch-1 decoder that reads every weight per token could go.

Each speed is the best of `repeats` timings (the same for every contestant), which filters out
moments when other processes held the cores.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from benchmarks import memory_bandwidth
from benchmarks.report import Row
from runtime.tokenizer import CharTokenizer
from textgen_core.models.gpt import GPT, GPTConfig

BABY = GPTConfig(vocab_size=84, block_size=256, n_layer=6, n_head=6, n_embd=384)
PROMPT = "ROMEO:\nWhat light"
FULL = "torch, full recompute (nanoGPT)"
CACHED = "torch + KV cache"
BOUND = "weight-read bound (fp32)"
LEARNED = "runtime fp32, learned positions"


def bench_model(config: GPTConfig = BABY) -> tuple[GPT, CharTokenizer]:
    """Random weights of `config`'s shape (speed does not depend on their values)."""
    torch.manual_seed(0)
    text = "".join(chr(32 + i % 90) for i in range(config.vocab_size)) + PROMPT
    tokenizer = CharTokenizer.from_text(text)
    config = GPTConfig(**{**config.to_dict(), "vocab_size": tokenizer.vocab_size})
    return GPT(config).eval(), tokenizer


def _full_recompute(model: GPT, ids: list[int], new_tokens: int) -> float:
    idx = torch.tensor([ids])
    t0 = time.perf_counter()
    with torch.inference_mode():
        for _ in range(new_tokens):
            logits, _, _ = model(idx[:, -model.config.block_size:])
            idx = torch.cat((idx, logits[0, -1].argmax().view(1, 1)), dim=1)
    return new_tokens / (time.perf_counter() - t0)


def _timed(make_pieces, new_tokens: int) -> float:
    t0 = time.perf_counter()
    count = sum(1 for _ in make_pieces())
    assert count == new_tokens, (count, new_tokens)
    return new_tokens / (time.perf_counter() - t0)


def run(workdir: Path, new_tokens: int = 500, repeats: int = 3) -> tuple[list[Row], dict]:
    import runtime
    from export.onnx_export import export_gpt_onnx
    from export.quantize import quantize_int8
    from textgen_core.sampling import generate

    model, tokenizer = bench_model()
    fp32_path = export_gpt_onnx(model, tokenizer, workdir / "bench.onnx")
    int8_path = quantize_int8(fp32_path, workdir / "bench.int8.onnx")
    ids = tokenizer.encode(PROMPT)
    settings = dict(max_new_tokens=new_tokens, temperature=0.0, top_k=None, top_p=None,
                    repetition_penalty=1.0, seed=0)
    contestants = {
        FULL: None,  # timed by _full_recompute itself
        CACHED: lambda: generate(model, tokenizer, PROMPT, device="cpu", **settings),
    }
    # nanoGPT's learned positions: the same runtime, but a full window is re-read, not rolled.
    learned, _ = bench_model(GPTConfig(**{**BABY.to_dict(), "positions": "learned"}))
    learned_path = export_gpt_onnx(learned, tokenizer, workdir / "bench.learned.onnx")
    for label, path in (("runtime fp32", fp32_path), ("runtime int8", int8_path),
                        (LEARNED, learned_path)):
        generator = runtime.load(path)
        contestants[label] = lambda g=generator: g.generate(PROMPT, **settings)
    # Every contestant samples the same number of tokens from the same prompt, so each reads the
    # same contexts (growing, then sliding once the window is full, as nanoGPT's sample.py does).
    full_tokens = new_tokens
    speeds: dict[str, float] = {}
    _full_recompute(model, ids, 4)  # warm-up
    for _ in range(repeats):  # interleaved, so a busy moment does not hit one contestant only
        for label, make in contestants.items():
            speed = (_full_recompute(model, ids, full_tokens) if make is None
                     else _timed(make, new_tokens))
            speeds[label] = max(speeds.get(label, 0.0), speed)

    # CPU time (not wall time) of a one-thread runtime: what decoding costs when it has the core,
    # unaffected by other processes queueing for it (on a shared machine wall time is not).
    cpu_ms = {}
    for label, path in (("runtime fp32", fp32_path), ("runtime int8", int8_path)):
        generator = runtime.load(path, threads=1)
        best = float("inf")
        for _ in range(repeats):
            t0 = time.process_time()
            assert sum(1 for _ in generator.generate(PROMPT, **settings)) == new_tokens
            best = min(best, (time.process_time() - t0) / new_tokens)
        cpu_ms[label] = best * 1e3

    weight_bytes = sum(p.numel() for p in model.parameters()) * 4
    bandwidth = memory_bandwidth.measure()
    bound = bandwidth["best"] * 1e9 / weight_bytes
    ms = {label: f"{1e3 / speed:.2f} ms/token" for label, speed in speeds.items()}
    rows = [
        Row("sampling", FULL, speeds[FULL], "tok/s", note=f"{ms[FULL]}, {full_tokens} tokens"),
        Row("sampling", CACHED, speeds[CACHED], "tok/s", reference=FULL, note=ms[CACHED]),
        Row("sampling", BOUND, bound, "tok/s",
            note=f"{weight_bytes / 1e6:.1f} MB at {bandwidth['best']:.1f} GB/s = "
                 f"{1e3 / bound:.2f} ms/token"),
    ]
    for label in ("runtime fp32", "runtime int8"):
        rows += [
            Row("sampling", label, speeds[label], "tok/s", reference=FULL, note=ms[label]),
            Row("sampling", f"{label} vs KV cache", speeds[label], "tok/s", reference=CACHED,
                note="target >= 1.5x" if label.endswith("fp32") else ""),
            Row("sampling", f"{label} vs bound", speeds[label], "tok/s", reference=BOUND,
                note="target >= 0.50x" if label.endswith("fp32") else "target > 1x"),
        ]
    rows.append(Row("sampling", f"{LEARNED} vs bound", speeds[LEARNED], "tok/s", reference=BOUND,
                    note=f"{ms[LEARNED]}; re-reads 3/4 of the window every 1/4"))
    for label, ms_cpu in cpu_ms.items():
        rows.append(Row("sampling", f"{label}, 1 thread, CPU time vs bound", 1e3 / ms_cpu, "tok/s",
                        reference=BOUND, note=f"{ms_cpu:.2f} CPU ms/token"))
    info = {"cpu_ms_per_token_1_thread": cpu_ms, "shape": model.config.to_dict(),
            "new_tokens": new_tokens, "repeats": repeats,
            "memory_bandwidth_gbs": bandwidth, "fp32_weight_bytes": weight_bytes,
            "onnx_bytes": fp32_path.stat().st_size, "int8_onnx_bytes": int8_path.stat().st_size}
    return rows, info

