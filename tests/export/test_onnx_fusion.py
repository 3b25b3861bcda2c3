"""The exported graph's attention and GELU are fused, and a fusion that would change the numbers
is refused (the unfused graph is kept, with a warning)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

import export.gpt as onnx_export
from export import onnx_fusion
from runtime.tokenizer import CharTokenizer
from textgen_core.models.gpt import GPT, GPTConfig


def _plain_proto(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, positions: str = "rotary"
                 ) -> tuple[onnx.ModelProto, GPTConfig]:
    """An export with the fusion switched off."""
    torch.manual_seed(0)
    tokenizer = CharTokenizer.from_text("abcdefgh \n")
    config = GPTConfig(vocab_size=tokenizer.vocab_size, block_size=16, n_layer=2, n_head=2, n_embd=16,
                       positions=positions)
    with monkeypatch.context() as patch:
        patch.setattr(onnx_export, "fuse_gpt_graph", lambda proto, **_: None)
        path = onnx_export.export_gpt_onnx(GPT(config).eval(), tokenizer, tmp_path / "plain.onnx")
    return onnx.load(str(path)), config


def test_export_fuses_attention_and_gelu(exported_tiny: dict[str, Path]) -> None:
    proto = onnx.load(str(exported_tiny["onnx"]))
    ops = [n.op_type for n in proto.graph.node]
    # tiny model: 2 layers, rotary, so onnxruntime-genai's in-place-cache attention
    assert ops.count("GroupQueryAttention") == 2 and ops.count("Gelu") == 2
    assert "Erf" not in ops and "Softmax" not in ops
    # The cache is extended inside the fused node, not by a Concat of the whole past.
    assert not [n for n in proto.graph.node if n.op_type == "Concat"
                and any(out.startswith("present.") for out in n.output)]
    assert len(ops) < 70


@pytest.mark.parametrize(("positions", "cache_buffers"),
                         [("rotary", True), ("rotary", False), ("learned", False)])
def test_fused_graph_computes_the_same(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       positions: str, cache_buffers: bool) -> None:
    proto, config = _plain_proto(tmp_path, monkeypatch, positions)
    fused = onnx.ModelProto()
    fused.CopyFrom(proto)
    report = onnx_fusion.fuse_gpt_graph(fused, n_layer=2, n_head=2, vocab_size=config.vocab_size,
                                        block_size=config.block_size, cache_buffers=cache_buffers)
    assert (report.attention_fused, report.gelu_fused) == (2, 2)
    assert report.nodes_after < report.nodes_before / 2
    attention = "GroupQueryAttention" if cache_buffers else "MultiHeadAttention"
    assert [n.op_type for n in fused.graph.node].count(attention) == 2
    rng = np.random.default_rng(1)
    # GroupQueryAttention reads several tokens after a past only at batch 1 (onnxruntime's CPU
    # kernel); the interface without it also takes them batched.
    calls = ((1, 0, 9), (3, 5, 1), (1, 5, 4), (1, 15, 1)) + (() if cache_buffers else ((3, 5, 4),))
    for batch, past, new in calls:
        feed = {"input_ids": rng.integers(0, config.vocab_size, (batch, new))}
        if positions == "rotary":  # as after a rolled cache: beyond the past's length
            feed["position_ids"] = np.tile(np.arange(new) + past + 40, (batch, 1))
        for i in range(2):
            for part in ("key", "value"):
                feed[f"past_key_values.{i}.{part}"] = rng.standard_normal((batch, 2, past, 8), dtype=np.float32)
        for a, b in zip(onnx_fusion._outputs(proto, feed), onnx_fusion._outputs(fused, feed), strict=True):
            assert a.shape == b.shape and np.abs(a - b).max() < 1e-5


def test_a_fusion_that_changes_the_numbers_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    proto, config = _plain_proto(tmp_path, monkeypatch)
    before = proto.SerializeToString()
    # One head instead of two: a valid graph that computes something else.
    with pytest.warns(RuntimeWarning, match="fusion skipped"):
        report = onnx_fusion.fuse_gpt_graph(proto, n_layer=2, n_head=1, vocab_size=config.vocab_size,
                                            block_size=config.block_size)
    assert report.attention_fused == 0 and proto.SerializeToString() == before


def test_a_graph_without_the_pattern_is_left_alone(exported_tiny: dict[str, Path]) -> None:
    proto = onnx.load(str(exported_tiny["onnx"]))  # already fused: nothing left to match
    before = proto.SerializeToString()
    report = onnx_fusion.fuse_gpt_graph(proto, n_layer=2, n_head=2, vocab_size=10, block_size=32)
    assert (report.attention_fused, report.gelu_fused) == (0, 0)
    assert proto.SerializeToString() == before
