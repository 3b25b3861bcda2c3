"""Sampling tokens/s for one set of weights, four ways, batch 1, greedy:

- nanoGPT-style torch sampling: the whole context recomputed for every new token (reference);
- torch with our KV cache (`textgen_core.sampling.generate`);
- the runtime on the fp32 ONNX file, and on the int8 one (`runtime.load(...).generate`).

Also the weight-read bound: the time to stream every fp32 weight from memory once per token at
the bandwidth measured here, the ceiling for batch-1 decoding that must read all weights per token.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.report import Row
from runtime.tokenizer import CharTokenizer
from textgen_core.models.gpt import GPT, GPTConfig

BABY = GPTConfig(vocab_size=84, block_size=256, n_layer=6, n_head=6, n_embd=384)
PROMPT = "ROMEO:\nWhat light"


def memory_bandwidth_gbs(size_mb: int = 512, repeats: int = 5) -> float:
    """Best-of read+write copy bandwidth of a large array (counts bytes read and written)."""
    src = np.ones(size_mb * 1024 * 1024 // 8)
    dst = np.empty_like(src)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        np.copyto(dst, src)
        best = min(best, time.perf_counter() - t0)
    return 2 * src.nbytes / best / 1e9


def _full_recompute_tokens_per_s(model: GPT, ids: list[int], new_tokens: int) -> float:
    idx = torch.tensor([ids])
    t0 = time.perf_counter()
    with torch.inference_mode():
        for _ in range(new_tokens):
            window = idx[:, -model.config.block_size :]
            logits, _, _ = model(window)
            next_id = logits[0, -1].argmax().view(1, 1)
            idx = torch.cat((idx, next_id), dim=1)
    return new_tokens / (time.perf_counter() - t0)


def _timed(pieces, new_tokens: int) -> float:
    t0 = time.perf_counter()
    count = sum(1 for _ in pieces)
    assert count == new_tokens, (count, new_tokens)
    return new_tokens / (time.perf_counter() - t0)


def run(workdir: Path, new_tokens: int = 200, config: GPTConfig = BABY) -> tuple[list[Row], dict]:
    import runtime
    from export.onnx_export import export_gpt_onnx
    from export.quantize import quantize_int8
    from textgen_core.sampling import generate

    torch.manual_seed(0)
    text = "".join(chr(32 + i % 90) for i in range(config.vocab_size)) + PROMPT
    tokenizer = CharTokenizer.from_text(text)
    config = GPTConfig(**{**config.to_dict(), "vocab_size": tokenizer.vocab_size})
    model = GPT(config).eval()
    fp32_path = export_gpt_onnx(model, tokenizer, workdir / "bench.onnx")
    int8_path = quantize_int8(fp32_path, workdir / "bench.int8.onnx")
    ids = tokenizer.encode(PROMPT)
    settings = dict(max_new_tokens=new_tokens, temperature=0.0, top_k=None, top_p=None,
                    repetition_penalty=1.0, seed=0)

    _full_recompute_tokens_per_s(model, ids, 8)  # warm-up
    full = _full_recompute_tokens_per_s(model, ids, new_tokens)
    list(generate(model, tokenizer, PROMPT, device=torch.device("cpu"), **{**settings, "max_new_tokens": 8}))
    cached = _timed(generate(model, tokenizer, PROMPT, device=torch.device("cpu"), **settings), new_tokens)
    rows = [
        Row("sampling", "torch, full recompute (nanoGPT)", full, "tok/s"),
        Row("sampling", "torch + KV cache", cached, "tok/s", reference="torch, full recompute (nanoGPT)"),
    ]
    for label, path in (("runtime fp32", fp32_path), ("runtime int8", int8_path)):
        generator = runtime.load(path)
        list(generator.generate(PROMPT, **{**settings, "max_new_tokens": 8}))
        speed = _timed(generator.generate(PROMPT, **settings), new_tokens)
        rows.append(Row("sampling", label, speed, "tok/s", reference="torch, full recompute (nanoGPT)"))
        rows.append(Row("sampling", f"{label} vs cache", speed, "tok/s", reference="torch + KV cache"))

    weight_bytes = sum(p.numel() for p in model.parameters()) * 4
    bandwidth = memory_bandwidth_gbs()
    bound = bandwidth * 1e9 / weight_bytes
    rows.append(Row("sampling", "weight-read bound (fp32)", bound, "tok/s",
                    note=f"{weight_bytes / 1e6:.1f} MB of weights at {bandwidth:.1f} GB/s"))
    fp32 = next(r for r in rows if r.name == "runtime fp32")
    rows.append(Row("sampling", "runtime fp32 vs bound", fp32.value, "tok/s",
                    reference="weight-read bound (fp32)"))
    info = {"sampling_shape": config.to_dict(), "new_tokens": new_tokens,
            "memory_bandwidth_gbs": bandwidth, "fp32_weight_bytes": weight_bytes,
            "onnx_bytes": fp32_path.stat().st_size, "int8_onnx_bytes": int8_path.stat().st_size}
    return rows, info
