"""Decode tokens/s of the web page (`python -m export web`, onnxruntime-web's WebAssembly build
in headless Chromium) beside the Python runtime's on the same file, one thread each.

The model is the quick start's shape (the `cpu` preset: 4 layers, 128 wide, context 128, a char
vocabulary of 84, rotary positions) with random weights: speed does not depend on their values.
Both sides decode greedily from the same prompt, so a full window rolls its cache on both, and
both are timed from the first new token to the last (the prompt's prefill excluded): the
runtime's `generate` pieces on one onnxruntime thread (on the file `python -m export onnx`
writes: the page's graph only adds outputs, export/web_graph.py), the page's `textgen.generate` as its
`lastRun.tokensPerSecond` says. The rounds alternate the two sides, so a neighbour's load hits
both alike; each side's best round is its row, and the note gives the median of the per-round
ratios.

Needs Chromium (`/usr/bin/chromium`, or TEXTGEN_CHROMIUM), playwright (the test extra) and
onnxruntime-web (npm, or TEXTGEN_ONNXRUNTIME_WEB); without Chromium it reports nothing.
"""

from __future__ import annotations

import os
import statistics
import threading
import time
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import torch

from benchmarks.report import Row
from export.cli import export_checkpoint
from runtime.tokenizer import CharTokenizer
from textgen_core.models.gpt import GPT, GPTConfig
from textgen_core.training.checkpoint import make_checkpoint, save_checkpoint
from textgen_core.training.presets import PRESETS

CHROMIUM = os.environ.get("TEXTGEN_CHROMIUM", "/usr/bin/chromium")
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PROMPT = "ROMEO:\nWhat light"
GROUP = "decode, batch 1, greedy, one thread"
PYTHON = "Python runtime (onnxruntime, numpy)"
PAGE = "web page (onnxruntime-web WASM, Chromium)"


def _checkpoint(workdir: Path) -> Path:
    torch.manual_seed(0)
    text = "".join(chr(32 + i % 90) for i in range(84)) + PROMPT
    tokenizer = CharTokenizer.from_text(text)
    shape = {k: v for k, v in PRESETS["cpu"]["model"].items() if k != "dropout"}
    config = GPTConfig(vocab_size=tokenizer.vocab_size, **shape)
    path = workdir / "quick.pt"
    save_checkpoint(make_checkpoint(kind="gpt", model_config=config.to_dict(),
                                    tokenizer=tokenizer.to_dict(),
                                    model_state=GPT(config).state_dict()), path)
    return path


def _python_speed(model_file: Path, new_tokens: int) -> float:
    import runtime

    generator = runtime.load(model_file, threads=1)
    stamps = [time.perf_counter() for _ in generator.generate(PROMPT, max_new_tokens=new_tokens,
                                                               temperature=0)]
    return (len(stamps) - 1) / (stamps[-1] - stamps[0])


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def run(workdir: Path, new_tokens: int = 500, rounds: int = 5) -> tuple[list[Row], dict[str, Any]]:
    if not Path(CHROMIUM).exists():
        return [], {"skipped": f"no Chromium at {CHROMIUM}"}
    from playwright.sync_api import sync_playwright

    folder = workdir / "quick-web"
    checkpoint = str(_checkpoint(workdir))
    export_checkpoint(checkpoint, "web", str(folder), report=lambda line: None)
    (model_file,) = export_checkpoint(checkpoint, "onnx", report=lambda line: None)  # the runtime's
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=str(folder)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    python, page_speeds = [], []
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
            page = browser.new_page()
            page.goto(f"http://127.0.0.1:{httpd.server_address[1]}/index.html")
            page.evaluate("window.textgen.ready.then(() => null)")
            options = {"prompt": PROMPT, "maxNewTokens": new_tokens, "temperature": 0}
            page.evaluate("([o]) => window.textgen.generate(o)", [options])  # warm-up: JIT, caches
            _python_speed(model_file, new_tokens)
            for _ in range(rounds):
                page.evaluate("([o]) => window.textgen.generate(o)", [options])
                page_speeds.append(page.evaluate("window.textgen.lastRun.tokensPerSecond"))
                python.append(_python_speed(model_file, new_tokens))
            user_agent = page.evaluate("navigator.userAgent")
            browser.close()
    finally:
        httpd.shutdown()
        httpd.server_close()
    ratios = [p / q for p, q in zip(page_speeds, python, strict=True)]
    note = f"median of {rounds} paired rounds {statistics.median(ratios):.2f}x"
    rows = [Row(GROUP, PYTHON, max(python), "tok/s"),
            Row(GROUP, PAGE, max(page_speeds), "tok/s", reference=PYTHON, note=note)]
    return rows, {"python": python, "page": page_speeds, "browser": user_agent,
                  "new_tokens": new_tokens}
