"""The in-place cache of a GroupQueryAttention file (runtime/gpt.py) reads what the
plain interface reads, rolls like it, refuses to overflow, and rotary files from before it still
sample like torch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import export.gpt as onnx_export
import runtime
from export import onnx_fusion
from runtime.tokenizer import CharTokenizer
from runtime.window import RollingPast
from textgen_core.models.gpt import GPT, GPTConfig
from textgen_core.sampling import generate as torch_generate


@pytest.fixture(scope="module")
def generator(exported_tiny: dict[str, Path]) -> runtime.TextGenerator:
    return runtime.load(exported_tiny["onnx"])


def test_buffers_read_and_roll_as_the_plain_interface(generator) -> None:
    """Prefill, steps to a full window, a roll and more steps: the logits of the buffers and of
    past-in/present-out calls (a RollingPast) agree at every call. Single tokens go through
    `step`, the decode loop's pre-bound call, as when sampling."""
    model = generator.model
    assert model.shape.cache_buffers
    block = model.shape.block_size
    ids = generator.tokenizer.encode("Whether 'tis nobler in the mind to suffer the slings")
    cache = model.cache_buffers()
    plain = RollingPast(model.empty_past())

    def both(tokens: list[int]) -> None:
        nonlocal plain
        got = cache.step(tokens)[:, None] if len(tokens) == 1 else cache.forward(np.asarray([tokens]))
        expected, present = model.forward(np.asarray([tokens]), plain.cache, plain.position)
        plain = RollingPast(present, plain.position + len(tokens))
        np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)
        assert cache.length == plain.cache[0].shape[2] and cache.position == plain.position

    both(ids[:5])
    for token in ids[5:block]:
        both([token])
    assert cache.length == block
    cache.rolled(9)
    plain = plain.rolled(9)
    for token in ids[block:block + 6]:
        both([token])
    assert cache.cleared().length == cache.position == 0


def test_buffers_refuse_more_positions_than_they_hold(generator) -> None:
    cache = generator.model.cache_buffers()
    cache.forward(np.zeros((1, generator.block_size), np.int64))
    with pytest.raises(ValueError, match="exceed"):
        cache.forward(np.zeros((1, 1), np.int64))
    with pytest.raises(ValueError, match="fill"):
        cache.step([0])


def test_a_step_of_several_rows_reads_each_row_as_a_call_would(generator) -> None:
    """`step` of a batch (different tokens per row) gives every row the logits a one-token
    `forward` gives it, and the bound logits are a fresh answer at every step."""
    model = generator.model
    ids = generator.tokenizer.encode("To be, or not to be")
    stepped, called = model.cache_buffers(3), model.cache_buffers(3)
    stepped.forward(np.asarray([ids] * 3))
    called.forward(np.asarray([ids] * 3))
    previous = None
    for tokens in ([1, 2, 3], [4, 4, 0], [2, 1, 5]):
        got = stepped.step(tokens).copy()
        expected = called.forward(np.asarray(tokens)[:, None])[:, -1]
        np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)
        assert previous is None or not np.array_equal(got, previous)
        previous = got
    assert stepped.length == called.length == len(ids) + 3


def test_a_rotary_file_without_the_buffer_inputs_still_samples_like_torch(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Rotary files exported before GroupQueryAttention (MultiHeadAttention, a cache that only
    grows) roll through the plain interface."""
    tokenizer = CharTokenizer.from_text("abcdefgh \n")
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=tokenizer.vocab_size, block_size=12, n_layer=2, n_head=2,
                          n_embd=16)).eval()
    fuse = onnx_fusion.fuse_gpt_graph
    monkeypatch.setattr(onnx_export, "fuse_gpt_graph",
                        lambda proto, **kw: fuse(proto, **{**kw, "cache_buffers": False}))
    older = runtime.load(onnx_export.export_gpt_onnx(model, tokenizer, tmp_path / "older.onnx"))
    assert older.model.shape.rotary and not older.model.shape.cache_buffers
    ours = list(older.generate("abc", max_new_tokens=60, temperature=0.7, seed=2))
    assert ours == list(torch_generate(model, tokenizer, "abc", max_new_tokens=60, temperature=0.7,
                                       seed=2))
