"""What continuous batching buys: `python -m runtime.serve` at 1, 4, 8 and 16 concurrent streams.

The baby shape (6x384, ctx 256, rotary: GroupQueryAttention's per-row lengths) with random
weights, served in-process on 127.0.0.1 (runtime/http_api.py's `Server` over runtime/scheduler.py's
`Engine`); each client streams one completion of `new_tokens` tokens at temperature 0.8 with its
own seed over raw HTTP and records when its first and last piece arrive. The reference, in the
same run, is the runtime's batch-1 decode of one stream without a server (`generate`), timed
just before each concurrency level so that both see the same moment of a shared machine. Rows:
aggregate tokens/s over all streams (first request sent to last piece received) against the best
batch-1 decode's tokens/s, with the ratio to the batch-1 decode timed beside it (the paired
ratio) and the median time to first token in the note.
"""

from __future__ import annotations

import http.client
import json
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from benchmarks.report import Row
from benchmarks.sampling_speed import BABY, PROMPT, bench_model
from textgen_core.models.gpt import GPTConfig

GROUP = "serving"
STREAMS = (1, 4, 8, 16)


def _stream(port: int, seed: int, new_tokens: int) -> tuple[float, float, int]:
    """(seconds to the first piece, seconds to the end, characters) of one streamed completion."""
    start = time.perf_counter()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    connection.request("POST", "/v1/completions", body=json.dumps(
        {"prompt": PROMPT, "max_tokens": new_tokens, "temperature": 0.8, "seed": seed,
         "stream": True}))
    response = connection.getresponse()
    first, chars = None, 0
    for line in response:
        if line.startswith(b"data: {"):
            chars += len(json.loads(line[6:])["choices"][0]["text"])
            if first is None:
                first = time.perf_counter() - start
    connection.close()
    return first or 0.0, time.perf_counter() - start, chars


def run(workdir: Path, config: GPTConfig = BABY, new_tokens: int = 500,
        streams: tuple[int, ...] = STREAMS) -> tuple[list[Row], dict]:
    import runtime
    from export.gpt import export_gpt_onnx
    from runtime.http_api import Server
    from runtime.openai_api import Limits
    from runtime.scheduler import Engine
    from runtime.serve import server_spins

    model, tokenizer = bench_model(config)
    path = export_gpt_onnx(model, tokenizer, workdir / "serving.onnx")
    generator = runtime.load(path)
    list(generator.generate(PROMPT, max_new_tokens=8, temperature=0.8, seed=0))  # warm-up

    def alone_rate() -> float:
        t0 = time.perf_counter()
        for _ in generator.generate(PROMPT, max_new_tokens=new_tokens, temperature=0.8, seed=0):
            pass
        return new_tokens / (time.perf_counter() - t0)

    engine = Engine(runtime.load(path, spin=server_spins()), max_rows=max(streams), max_waiting=64)
    server = Server(("127.0.0.1", 0), engine, "bench", {}, Limits(), None, 256, None)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    port = server.server_address[1]
    info: dict = {"shape": model.config.to_dict(), "new_tokens": new_tokens}
    alone_rates, served = [], []
    try:
        _stream(port, 0, 8)  # warm-up through HTTP
        for n in streams:
            alone_rates.append(alone_rate())
            t0 = time.perf_counter()
            with ThreadPoolExecutor(n) as pool:
                results = list(pool.map(lambda seed: _stream(port, seed, new_tokens), range(n)))
            wall = time.perf_counter() - t0
            rate = n * new_tokens / wall
            ttft = statistics.median(r[0] for r in results)
            versus_one = f"; {rate / served[0].value:.2f}x one stream" if served else ""
            served.append(Row(GROUP, f"{n} streams", rate, "tok/s", reference="batch-1 decode",
                              note=f"aggregate; paired ratio {rate / alone_rates[-1]:.2f}x"
                                   f"{versus_one}; median time to first token "
                                   f"{ttft * 1e3:.0f} ms"))
            info[f"streams_{n}"] = {"tokens_per_s": rate, "ttft_s": [r[0] for r in results],
                                    "wall_s": wall, "batch_1_tokens_per_s": alone_rates[-1]}
    finally:
        server.shutdown()
        server.server_close()
        engine.close()
    best = Row(GROUP, "batch-1 decode", max(alone_rates), "tok/s",
               note="runtime generate, no server: the best of the runs timed beside each level")
    return [best, *served], info
