import json
from pathlib import Path

import numpy as np
import onnx
import torch

from export.gpt import export_gpt_onnx
from export.parity import onnx_parity, open_session, run_onnx
from runtime.onnx_scan import check_structure, verify_checksum
from runtime.tokenizer import CharTokenizer
from textgen_core.models.gpt import GPT, GPTConfig, gpt_from_checkpoint
from textgen_core.training.checkpoint import load_checkpoint


def test_file_passes_the_full_onnx_check_and_carries_metadata(exported_tiny: dict[str, Path]) -> None:
    proto = onnx.load(str(exported_tiny["onnx"]))
    onnx.checker.check_model(proto, full_check=True)
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta["textgen.format"] == "textgen-onnx" and meta["textgen.format_version"] == "1"
    assert meta["textgen.kind"] == "gpt"
    payload = load_checkpoint(exported_tiny["checkpoint"])
    assert json.loads(meta["textgen.tokenizer"]) == payload["tokenizer"]
    assert json.loads(meta["textgen.model_config"]) == payload["model_config"]
    data = exported_tiny["onnx"].read_bytes()
    verify_checksum(data, check_structure(data))


def test_names_and_dynamic_dimensions_follow_the_contract(exported_tiny: dict[str, Path]) -> None:
    graph = onnx.load(str(exported_tiny["onnx"])).graph

    def dims(value: onnx.ValueInfoProto) -> list[object]:
        return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]

    inputs = {v.name: dims(v) for v in graph.input}
    outputs = {v.name: dims(v) for v in graph.output}
    assert inputs["input_ids"] == ["batch", "sequence"]
    assert inputs["past_key_values.0.key"] == ["batch", 2, "past_sequence", 16]
    assert inputs["position_ids"] == ["batch", "sequence"]  # rotary, the default
    # GroupQueryAttention's lengths: the past may be a longer buffer (runtime/gpt.py)
    assert inputs["seqlens_k"] == ["batch"] and inputs["total_sequence_length"] == []
    assert inputs.keys() == {"input_ids", "position_ids", "seqlens_k", "total_sequence_length"} | {
        f"past_key_values.{i}.{p}" for i in range(2) for p in ("key", "value")}
    assert outputs["logits"][:2] == ["batch", "sequence"]
    assert outputs["present.1.value"] == ["batch", 2, "total_sequence", 16]


def test_parity_without_past_with_past_and_batched(exported_tiny: dict[str, Path]) -> None:
    model, _ = gpt_from_checkpoint(load_checkpoint(exported_tiny["checkpoint"]))
    report = onnx_parity(model, exported_tiny["onnx"], seed=3)
    assert report.worst < 1e-4, report


def test_token_by_token_cached_logits_match_uncached(exported_tiny: dict[str, Path]) -> None:
    model, _ = gpt_from_checkpoint(load_checkpoint(exported_tiny["checkpoint"]))
    c = model.config
    session = open_session(exported_tiny["onnx"])
    ids = torch.randint(0, c.vocab_size, (1, c.block_size), generator=torch.Generator().manual_seed(1)).numpy()
    whole, _ = run_onnx(session, ids, None, c.n_layer, c.n_head, c.head_size)
    past, steps = None, []
    for t in range(c.block_size):
        logits, past = run_onnx(session, ids[:, t : t + 1], past, c.n_layer, c.n_head, c.head_size)
        steps.append(logits)
    np.testing.assert_allclose(np.concatenate(steps, axis=1), whole, atol=1e-4, rtol=0)


def test_learned_positions_keep_the_interface_without_position_ids(tmp_path: Path) -> None:
    """nanoGPT's learned positions (and every file exported before rotary): no position_ids."""
    tokenizer = CharTokenizer.from_text("abcdefgh \n")
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=tokenizer.vocab_size, block_size=12, n_layer=2, n_head=2,
                          n_embd=16, positions="learned")).eval()
    path = export_gpt_onnx(model, tokenizer, tmp_path / "learned.onnx")
    names = {v.name for v in onnx.load(str(path)).graph.input}
    assert "position_ids" not in names and "input_ids" in names
    report = onnx_parity(model, path)
    assert report.worst < 1e-4 and report.max_abs_diff_far_positions == 0.0
