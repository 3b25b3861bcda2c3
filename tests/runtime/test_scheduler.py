"""The serving engine without HTTP: rows served together give exactly the text each gives
alone, join and leave at step boundaries, share model calls, and a cancelled row stops at once."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

import runtime
from runtime.sampler import SamplingSettings
from runtime.scheduler import Engine, Job, QueueFull, job_seeds, run_alone
from runtime.tokenizer import start_ids


def _texts(ticket) -> tuple[dict[int, str], dict[int, str]]:
    texts: dict[int, str] = {}
    finishes: dict[int, str] = {}
    for output in ticket.outputs():
        texts[output.index] = texts.get(output.index, "") + output.piece
        if output.finish_reason is not None:
            finishes[output.index] = output.finish_reason
    return texts, finishes


def test_rows_served_together_equal_each_run_alone(exported_tiny: dict[str, Path]) -> None:
    generator = runtime.load(exported_tiny["onnx"])
    engine = Engine(generator, max_rows=4, max_waiting=64)
    try:
        assert engine.batched  # a GroupQueryAttention file: one model call per step for all
        prompts = ["To be", "", "the", "to", "To be, or not to be" * 3, "a"]
        jobs = []
        for i, prompt in enumerate(prompts):
            settings = SamplingSettings(0.0 if i % 2 else 1.0, top_k=None if i % 3 else 5,
                                        repetition_penalty=1.0 if i % 4 else 1.3)
            # lengths past the 32-position window (rolls) and past the roll limit (a slide)
            jobs.append(Job(start_ids(generator.tokenizer, prompt), settings, job_seeds(i, 2),
                            40 + 25 * i if i != 3 else 1100))
        tickets = [engine.submit(job) for job in jobs]  # 12 rows, 4 at a time: they join
        served = [_texts(ticket) for ticket in tickets]
        total_tokens = sum(sum(t.completion_tokens) for t in tickets)
        assert engine.steps < total_tokens  # steps were shared
    finally:
        engine.close()
    for job, (texts, finishes) in zip(jobs, served, strict=True):
        alone = run_alone(generator, job)
        assert [texts[i] for i in range(2)] == alone
        assert finishes == {0: "length", 1: "length"}


def test_stop_texts_end_a_row_and_are_not_streamed(exported_tiny: dict[str, Path]) -> None:
    generator = runtime.load(exported_tiny["onnx"])
    engine = Engine(generator, max_rows=2)
    try:
        greedy = SamplingSettings(0.0)
        ids = start_ids(generator.tokenizer, "To be")
        full = run_alone(generator, Job(ids, greedy, [None], 80))[0]
        stop = full[30:33]
        job = Job(ids, greedy, [None], 80, [stop])
        texts, finishes = _texts(engine.submit(job))
    finally:
        engine.close()
    assert texts[0] == full[:full.index(stop)] == run_alone(generator, job)[0]
    assert finishes == {0: "stop"}


def test_a_cancelled_row_stops_taking_steps(exported_tiny: dict[str, Path]) -> None:
    generator = runtime.load(exported_tiny["onnx"])
    engine = Engine(generator, max_rows=2)
    try:
        ticket = engine.submit(Job([0], SamplingSettings(1.0), [1], 1_000_000))
        assert ticket.sink.get(timeout=30).piece is not None
        ticket.cancel()
        deadline = time.monotonic() + 10
        while engine.load()["running"] and time.monotonic() < deadline:
            time.sleep(0.01)
        assert engine.load() == {"running": 0, "waiting": 0}
        steps = engine.steps
        time.sleep(0.2)
        assert engine.steps == steps
        assert ticket.completion_tokens[0] < 1_000_000
    finally:
        engine.close()


def test_a_full_queue_refuses_a_job(exported_tiny: dict[str, Path]) -> None:
    engine = Engine(runtime.load(exported_tiny["onnx"]), max_rows=1, max_waiting=2)
    try:
        with pytest.raises(QueueFull, match="at most 2 may wait"):
            engine.submit(Job([0], SamplingSettings(), [1, 2, 3, 4], 5))  # 1 free row + 2
    finally:
        engine.close()


def test_a_gan_job_draws_the_sentences_of_a_run_alone(exported_tiny_gan: dict[str, Path]) -> None:
    sampler = runtime.load(exported_tiny_gan["onnx"])
    engine = Engine(sampler)
    try:
        job = Job([], SamplingSettings(0.5), job_seeds(7, 3), 100)
        texts, finishes = _texts(engine.submit(job))
    finally:
        engine.close()
    assert [texts[i] for i in range(3)] == sampler.sample(3, 7, 0.5) == run_alone(sampler, job)
    assert set(finishes.values()) == {"stop"}


def test_a_file_without_per_row_lengths_is_served_row_by_row(exported_tiny: dict[str, Path],
                                                              tmp_path: Path) -> None:
    """A layer stack (no key/value cache) takes the same queue; each row is its own call."""
    import torch

    from export.stack import export_stack_onnx
    from runtime.tokenizer import CharTokenizer
    from textgen_core.models.stack.model import Stack
    from textgen_core.models.stack.spec import StackConfig

    tokenizer = CharTokenizer(list("\n abcdefgh"))
    torch.manual_seed(0)
    layers = [{"type": "Embedding"}, {"type": "PositionalEmbedding"}, {"type": "Block"},
              {"type": "LayerNorm"}, {"type": "TemporalDense"}, {"type": "CrossEntropyLoss"}]
    model = Stack(StackConfig(vocab_size=tokenizer.vocab_size, block_size=8, n_embd=16,
                              n_head=2, layers=layers)).eval()
    path = export_stack_onnx(model, tokenizer, tmp_path / "stack.onnx")
    sampler = runtime.load(path)
    engine = Engine(sampler, max_rows=2)
    try:
        assert not engine.batched
        jobs = [Job(tokenizer.encode(p), SamplingSettings(t), job_seeds(3, 2), 30)
                for p, t in (("abc", 0.0), ("h", 1.0))]
        tickets = [engine.submit(job) for job in jobs]
        served = [_texts(ticket)[0] for ticket in tickets]
    finally:
        engine.close()
    for job, texts in zip(jobs, served, strict=True):
        assert [texts[0], texts[1]] == run_alone(sampler, job)
