"""Our runtime against onnxruntime-genai's C++ decode loop, batch 1, greedy, paired rounds.

Contestants, all decoding the same number of tokens after the same prompt, detokenising each:
- our runtime (`runtime.load(...).generate`) on the fp32 ONNX file and on its int4 variant;
- the floor of any Python loop on those files: the runtime's pre-bound cache step and an argmax,
  nothing else (no detokeniser: the one contestant that skips it);
- onnxruntime-genai on **our own** exported folder (`python -m export genai`, fp32 and int4):
  the same graph and weights, only the decode loop differs;
- onnxruntime-genai on a random-weight Llama of equal weight bytes built by its own model builder
  (`onnxruntime_genai.models.builder`, `-p fp32` and `-p int4`), when the builder can run here:
  it needs `transformers` to read the model folder, which we write offline.

The model is the sampling bench's baby shape (6x384) with a context of 1024, so that the prompt
and 500 new tokens fit: onnxruntime-genai stops at the context, where our runtime would roll its
cache, and both should do the same work. Each round times every contestant once, in turn, so a
busy moment on a shared machine hits them alike; the rows give the best round of each and the
notes the median of the per-round ratios, which is the number to quote.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks.report import Row
from benchmarks.sampling_speed import BABY, PROMPT, bench_model
from runtime.atomic_file import write_atomic
from runtime.regular_file import CONFIG_LIMIT, read_regular
from textgen_core.models.gpt import GPTConfig

SHAPE = GPTConfig(**{**BABY.to_dict(), "block_size": 1024})
OURS_FP32 = "runtime fp32"
OURS_INT4 = "runtime int4"
GENAI_FP32 = "onnxruntime-genai fp32, our folder"
GENAI_INT4 = "onnxruntime-genai int4, our folder"
LLAMA_FP32 = "onnxruntime-genai fp32, its Llama"
LLAMA_INT4 = "onnxruntime-genai int4, its Llama"
# The floor of any Python loop over our graph: the pre-bound step and an argmax, no tokenizer,
# no sampler. Against onnxruntime-genai on our folder it shows what a loop can win at best.
FLOOR_FP32 = "bare Python loop fp32"
FLOOR_INT4 = "bare Python loop int4"
# (contestant, the contestant it is compared with)
PAIRS = ((OURS_FP32, GENAI_FP32), (OURS_FP32, LLAMA_FP32), (OURS_INT4, GENAI_INT4),
         (OURS_INT4, LLAMA_INT4), (FLOOR_FP32, GENAI_FP32), (FLOOR_INT4, GENAI_INT4))


def set_threads(folder: Path, threads: int) -> None:
    """Give onnxruntime-genai's session `threads` intra-op threads (genai_config.json)."""
    path = folder / "genai_config.json"
    config = json.loads(read_regular(path, CONFIG_LIMIT))
    options = config["model"]["decoder"].setdefault("session_options", {})
    options["intra_op_num_threads"] = threads
    options["inter_op_num_threads"] = 1
    write_atomic(path, json.dumps(config, indent=1).encode("utf-8"))


def genai_decoder(folder: Path, prompt: list[int], new_tokens: int) -> Callable[[], float]:
    """A timing (tok/s) of onnxruntime-genai decoding `new_tokens` after `prompt`, greedy, each
    token detokenised by its streaming decoder as our runtime's pieces are."""
    import onnxruntime_genai as og

    model = og.Model(str(folder))
    tokenizer = og.Tokenizer(model)

    def timed() -> float:
        t0 = time.perf_counter()
        params = og.GeneratorParams(model)
        params.set_search_options(max_length=len(prompt) + new_tokens, do_sample=False)
        generator = og.Generator(model, params)
        stream = tokenizer.create_stream()
        generator.append_tokens(prompt)
        count = 0
        while not generator.is_done():
            generator.generate_next_token()
            stream.decode(int(generator.get_next_tokens()[0]))
            count += 1
        elapsed = time.perf_counter() - t0
        assert count == new_tokens, (count, new_tokens)
        return new_tokens / elapsed

    return timed


def runtime_decoder(path: Path, prompt: str, new_tokens: int, threads: int) -> Callable[[], float]:
    import runtime

    generator = runtime.load(path, threads=threads)

    def timed() -> float:
        t0 = time.perf_counter()
        count = sum(1 for _ in generator.generate(prompt, max_new_tokens=new_tokens, temperature=0))
        assert count == new_tokens, (count, new_tokens)
        return new_tokens / (time.perf_counter() - t0)

    return timed


def floor_decoder(path: Path, prompt: str, new_tokens: int, threads: int) -> Callable[[], float]:
    """A timing (tok/s) of the least a Python loop can do per token with our runtime's cache:
    `CacheBuffers.step` and an argmax (what `generate` adds on top: sampler, decode loop,
    detokeniser)."""
    import numpy as np

    import runtime

    generator = runtime.load(path, threads=threads)
    ids = np.asarray([generator.tokenizer.encode(prompt)], dtype=np.int64)

    def timed() -> float:
        t0 = time.perf_counter()
        cache = generator.model.cache_buffers(1)
        token = int(cache.forward(ids)[0, -1].argmax())
        for _ in range(new_tokens - 1):
            token = int(cache.step([token])[0].argmax())
        return new_tokens / (time.perf_counter() - t0)

    return timed


def llama_intermediate(config: GPTConfig) -> int:
    """The Llama MLP width (three matrices) whose weights equal the GPT's (two of 4C): 8C/3,
    rounded to a multiple of 32 for the int4 blocks."""
    return round(8 * config.n_embd / 3 / 32) * 32


def build_llama(workdir: Path, config: GPTConfig, tokenizer_files: dict[str, dict],
                precision: str) -> tuple[Path | None, str]:
    """onnxruntime-genai's builder on a random-weight Llama of `config`'s shape and weight bytes
    (written offline with transformers): (folder, "") or (None, why it cannot run here)."""
    try:
        import transformers
    except ImportError:
        return None, "the builder needs transformers (pip install transformers), not installed"
    source = workdir / "llama-hf"
    if not source.exists():
        import torch

        torch.manual_seed(0)
        llama = transformers.LlamaForCausalLM(transformers.LlamaConfig(
            vocab_size=config.vocab_size, hidden_size=config.n_embd,
            intermediate_size=llama_intermediate(config), num_hidden_layers=config.n_layer,
            num_attention_heads=config.n_head, num_key_value_heads=config.n_head,
            max_position_embeddings=config.block_size, tie_word_embeddings=True,
            bos_token_id=0, eos_token_id=0, pad_token_id=0))
        llama.save_pretrained(source)
        for name, content in tokenizer_files.items():
            if name == "tokenizer_config.json":  # the fast class reads tokenizer.json alone
                content = {**content, "tokenizer_class": "PreTrainedTokenizerFast"}
            write_atomic(source / name, json.dumps(content).encode("utf-8"))
    out = workdir / f"llama-{precision}"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "onnxruntime_genai.models.builder", "-i", str(source), "-o",
         str(out), "-p", precision, "-e", "cpu", "-c", str(workdir / "llama-cache")],
        capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0 or not (out / "genai_config.json").exists():
        last = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        shutil.rmtree(out, ignore_errors=True)
        return None, f"the builder failed: {last[0][:200]}"
    # Our tokenizer, so both folders decode the same ids the same way, and as in ours no
    # end-of-text id (the builder took the tokenizer's, beyond the model's vocabulary).
    for name, content in tokenizer_files.items():
        write_atomic(out / name, json.dumps(content).encode("utf-8"))
    path = out / "genai_config.json"
    genai = json.loads(read_regular(path, CONFIG_LIMIT))
    genai["model"].update(bos_token_id=0, eos_token_id=[], pad_token_id=0)
    write_atomic(path, json.dumps(genai, indent=1).encode("utf-8"))
    return out, ""


def paired_rounds(contestants: dict[str, Callable[[], float]], rounds: int
                  ) -> dict[str, list[float]]:
    """tok/s of every contestant in every round, timed in turn within each round."""
    speeds: dict[str, list[float]] = {label: [] for label in contestants}
    for _ in range(rounds):
        for label, timed in contestants.items():
            speeds[label].append(timed())
    return speeds


def run(workdir: Path, new_tokens: int = 500, rounds: int = 5, threads: int = 2,
        shape: GPTConfig = SHAPE, llama: bool = True) -> tuple[list[Row], dict]:
    from export.genai import tokenizer_files, write_genai_folder
    from export.gpt import export_gpt_onnx
    from export.quantize import quantize_int4

    try:
        import onnxruntime_genai  # noqa: F401
    except ImportError:
        return [Row("genai", "onnxruntime-genai", 0.0, "tok/s",
                    note="not run: pip install onnxruntime-genai")], {"skipped": "not installed"}
    model, tokenizer = bench_model(shape)
    config = model.config
    if len(tokenizer.encode(PROMPT)) + new_tokens > config.block_size:
        raise ValueError(f"{new_tokens} new tokens after the prompt pass the context "
                         f"{config.block_size}, where onnxruntime-genai stops")
    fp32 = export_gpt_onnx(model, tokenizer, workdir / "genai-bench.onnx")
    int4 = quantize_int4(fp32, workdir / "genai-bench.int4.onnx")
    prompt = tokenizer.encode(PROMPT)
    contestants = {OURS_FP32: runtime_decoder(fp32, PROMPT, new_tokens, threads),
                   OURS_INT4: runtime_decoder(int4, PROMPT, new_tokens, threads),
                   FLOOR_FP32: floor_decoder(fp32, PROMPT, new_tokens, threads),
                   FLOOR_INT4: floor_decoder(int4, PROMPT, new_tokens, threads)}
    for label, graph in ((GENAI_FP32, fp32), (GENAI_INT4, int4)):
        folder = workdir / label.replace(" ", "-").replace(",", "")
        write_genai_folder(config, tokenizer, graph, folder, report=lambda line: None)
        set_threads(folder, threads)
        contestants[label] = genai_decoder(folder, prompt, new_tokens)
    skipped = ""
    if llama:
        for label, precision in ((LLAMA_FP32, "fp32"), (LLAMA_INT4, "int4")):
            folder, skipped = build_llama(workdir, config, tokenizer_files(tokenizer), precision)
            if folder is None:
                break
            set_threads(folder, threads)
            contestants[label] = genai_decoder(folder, prompt, new_tokens)
    for timed in contestants.values():  # warm-up: sessions, allocations, caches
        timed()
    speeds = paired_rounds(contestants, rounds)
    best = {label: max(values) for label, values in speeds.items()}
    ratios = {f"{a} / {b}": [x / y for x, y in zip(speeds[a], speeds[b], strict=True)]
              for a, b in PAIRS if a in speeds and b in speeds}
    rows = []
    for label in contestants:
        median = statistics.median(speeds[label])
        rows.append(Row("genai", label, best[label], "tok/s",
                        note=f"best {1e3 / best[label]:.2f} ms/token, median "
                             f"{1e3 / median:.2f}; {rounds} rounds, {threads} threads"))
    for a, b in PAIRS:
        key = f"{a} / {b}"
        if key in ratios:
            rows.append(Row("genai", f"{a} vs {b}", best[a], "tok/s", reference=b,
                            note=f"median of {rounds} paired rounds "
                                 f"{statistics.median(ratios[key]):.2f}x"))
    weight_bytes = sum(p.numel() for p in model.parameters()) * 4
    info = {"shape": config.to_dict(), "new_tokens": new_tokens, "rounds": rounds,
            "threads": threads, "tok_per_s": speeds, "paired_ratios": ratios,
            "fp32_weight_bytes": weight_bytes, "llama_skipped": skipped,
            "llama_intermediate_size": llama_intermediate(config)}
    if skipped:
        rows.append(Row("genai", "its Llama (model builder)", 0.0, "tok/s",
                        note=f"not run: {skipped}"))
    return rows, info
