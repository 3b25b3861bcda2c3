"""The onnxruntime-genai contestants run at a tiny size and report paired ratios (no speeds
asserted: speed is measured by `nox -s bench`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks import genai_speed
from benchmarks.sampling_speed import BABY
from textgen_core.models.gpt import GPT, GPTConfig

pytest.importorskip("onnxruntime_genai", reason="onnxruntime-genai is not installed "
                                                "(pip install onnxruntime-genai)")
pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = GPTConfig(vocab_size=84, block_size=48, n_layer=1, n_head=2, n_embd=32)


def test_our_folder_and_our_runtime_race_in_paired_rounds(tmp_path: Path) -> None:
    rows, info = genai_speed.run(tmp_path, new_tokens=12, rounds=2, threads=1, shape=TINY,
                                 llama=False)
    names = {row.name for row in rows}
    for label in (genai_speed.OURS_FP32, genai_speed.OURS_INT4, genai_speed.GENAI_FP32,
                  genai_speed.GENAI_INT4, genai_speed.FLOOR_FP32, genai_speed.FLOOR_INT4):
        assert label in names and len(info["tok_per_s"][label]) == 2
    assert f"{genai_speed.OURS_FP32} vs {genai_speed.GENAI_FP32}" in names
    assert f"{genai_speed.FLOOR_INT4} vs {genai_speed.GENAI_INT4}" in names
    assert all(len(r) == 2 and min(r) > 0 for r in info["paired_ratios"].values())


def test_the_prompt_and_new_tokens_must_fit_the_context(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="pass the context"):
        genai_speed.run(tmp_path, new_tokens=48, rounds=1, shape=TINY, llama=False)


def test_the_llama_has_the_gpts_weight_bytes() -> None:
    transformers = pytest.importorskip("transformers", reason="the model builder needs it")
    gpt = GPT(GPTConfig(**{**BABY.to_dict(), "vocab_size": 86}))
    llama = transformers.LlamaForCausalLM(transformers.LlamaConfig(
        vocab_size=86, hidden_size=BABY.n_embd, intermediate_size=genai_speed.llama_intermediate(BABY),
        num_hidden_layers=BABY.n_layer, num_attention_heads=BABY.n_head, tie_word_embeddings=True))
    ours = sum(p.numel() for p in gpt.parameters())
    theirs = sum(p.numel() for p in llama.parameters())
    assert abs(theirs - ours) / ours < 0.01


@pytest.mark.slow
def test_the_model_builders_llama_races_too(tmp_path: Path) -> None:
    pytest.importorskip("transformers", reason="the model builder needs it")
    rows, info = genai_speed.run(tmp_path, new_tokens=8, rounds=1, threads=1, shape=TINY)
    assert not info["llama_skipped"]
    assert f"{genai_speed.OURS_INT4} vs {genai_speed.LLAMA_INT4}" in {row.name for row in rows}
