"""What batched sampling costs: `generate(prompt, num_samples=8)` against one sample, runtime fp32.

The baby shape (6x384, ctx 256, rotary: the in-place cache, runtime/gpt.py) with random
weights; both sides sample the same number of new tokens per sequence from the same prompt at
temperature 0.8 with a seed, end to end (prefill, every step, the numpy sampler for each row,
detokenisation, window rolls). Batch 8 makes one model call per step for all 8 sequences
(runtime/decode.py `decode_batch`), so it reads every weight once per step, as batch 1 does; what
grows with the batch is the activations, the attention over 8 caches and the per-row sampler.

Timed in `rounds` paired rounds (batch 1 then batch 8, so both see the same moments of a shared
machine); the rows give the best of the rounds on each side, their ratio time(8)/time(1) (8.0
would mean no gain over 8 runs) and the note the median of the per-round ratios.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

from benchmarks.report import Row
from benchmarks.sampling_speed import BABY, PROMPT, bench_model
from textgen_core.models.gpt import GPTConfig

GROUP = "batch-sampling"


def _seconds(generator, batch: int, new_tokens: int) -> float:
    t0 = time.perf_counter()
    pairs = generator.generate(PROMPT, max_new_tokens=new_tokens, temperature=0.8, seed=0,
                               num_samples=batch)
    count = sum(1 for _ in pairs)
    assert count == batch * new_tokens, (count, batch, new_tokens)
    return time.perf_counter() - t0


def run(workdir: Path, config: GPTConfig = BABY, new_tokens: int = 500, rounds: int = 5,
        batch: int = 8) -> tuple[list[Row], dict]:
    import runtime
    from export.gpt import export_gpt_onnx

    model, tokenizer = bench_model(config)
    generator = runtime.load(export_gpt_onnx(model, tokenizer, workdir / "batch.onnx"))
    _seconds(generator, batch, min(new_tokens, 4))  # warm-up
    one, many, ratios = [], [], []
    for _ in range(rounds):
        one.append(_seconds(generator, 1, new_tokens))
        many.append(_seconds(generator, batch, new_tokens))
        ratios.append(many[-1] / one[-1])
    best_one, best_many = min(one), min(many)
    median = statistics.median(ratios)
    rows = [
        Row(GROUP, "batch 1", best_one, "s", note=f"{new_tokens} new tokens, "
                                                  f"{best_one / new_tokens * 1e3:.2f} ms/step"),
        Row(GROUP, f"batch {batch}", best_many, "s", reference="batch 1",
            note=f"ratio time({batch})/time(1), target well under {batch}; median round "
                 f"{median:.2f}x; {best_one * batch / best_many:.1f}x the tokens/s of batch 1"),
    ]
    info = {"shape": model.config.to_dict(), "new_tokens": new_tokens, "rounds": rounds,
            "batch": batch, "seconds_batch_1": one, f"seconds_batch_{batch}": many,
            "round_ratios": ratios}
    return rows, info
