from pathlib import Path

import numpy as np
import pytest
import torch

import runtime
from export.gpt import export_gpt_onnx
from runtime.errors import SamplingError, TokenizerError
from runtime.tokenizer import CharTokenizer
from runtime.window import roll_limit
from textgen_core.models.gpt import GPT, GPTConfig, gpt_from_checkpoint
from textgen_core.sampling import generate as torch_generate
from textgen_core.training.checkpoint import load_checkpoint


@pytest.fixture(scope="module")
def generator(exported_tiny: dict[str, Path]) -> runtime.TextGenerator:
    return runtime.load(exported_tiny["onnx"])


def test_greedy_runtime_equals_greedy_torch_for_200_tokens(generator, exported_tiny) -> None:
    model, tokenizer = gpt_from_checkpoint(load_checkpoint(exported_tiny["checkpoint"]))
    assert generator.block_size == 32  # 200 tokens slide the window many times
    ours = list(generator.generate("To be, or", max_new_tokens=200, temperature=0))
    torch_side = list(torch_generate(model, tokenizer, "To be, or", max_new_tokens=200, temperature=0))
    assert ours == torch_side and len(ours) == 200


def test_greedy_runtime_equals_torch_past_the_roll_limit(generator, exported_tiny) -> None:
    """Past roll_limit positions the cache slides once (positions restart at 0); both sides do
    it at the same token."""
    model, tokenizer = gpt_from_checkpoint(load_checkpoint(exported_tiny["checkpoint"]))
    count = roll_limit(generator.block_size) + 40
    ours = list(generator.generate("To", max_new_tokens=count, temperature=0))
    torch_side = list(torch_generate(model, tokenizer, "To", max_new_tokens=count, temperature=0))
    assert ours == torch_side


def test_a_learned_position_file_slides_like_torch(tmp_path: Path) -> None:
    """nanoGPT's learned positions (and files from before rotary) re-read a full window."""
    tokenizer = CharTokenizer.from_text("abcdefgh \n")
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=tokenizer.vocab_size, block_size=12, n_layer=2, n_head=2,
                          n_embd=16, positions="learned")).eval()
    learned = runtime.load(export_gpt_onnx(model, tokenizer, tmp_path / "learned.onnx"))
    assert not learned.model.shape.rotary
    ours = list(learned.generate("abc", max_new_tokens=60, temperature=0.7, seed=2))
    assert ours == list(torch_generate(model, tokenizer, "abc", max_new_tokens=60, temperature=0.7,
                                       seed=2))


def test_sampled_text_matches_torch_for_the_same_seed(generator, exported_tiny) -> None:
    model, tokenizer = gpt_from_checkpoint(load_checkpoint(exported_tiny["checkpoint"]))
    ours = "".join(generator.generate("The ", max_new_tokens=80, temperature=0.9, top_k=10, seed=4))
    torch_side = "".join(torch_generate(model, tokenizer, "The ", max_new_tokens=80, temperature=0.9, top_k=10, seed=4))
    assert ours == torch_side


def test_same_seed_same_text_and_seeds_differ(generator) -> None:
    a = "".join(generator.generate("Or ", max_new_tokens=60, temperature=1.0, seed=7))
    b = "".join(generator.generate("Or ", max_new_tokens=60, temperature=1.0, seed=7))
    c = "".join(generator.generate("Or ", max_new_tokens=60, temperature=1.0, seed=8))
    assert a == b and a != c


def test_streaming_is_lazy_and_pieces_are_text(generator) -> None:
    pieces = generator.generate("", max_new_tokens=5, temperature=0)
    assert all(isinstance(p, str) and len(p) == 1 for p in pieces)


def test_cached_and_uncached_logits_agree(generator) -> None:
    ids = generator.tokenizer.encode("Whether 'tis nobler in the mind")[: generator.block_size]
    whole = generator.logits(ids)
    logits, past = generator.model.forward(np.asarray([ids[:10]]), generator.model.empty_past())
    steps = [logits[0]]
    for token in ids[10:]:
        logits, past = generator.model.forward(np.asarray([[token]]), past)
        steps.append(logits[0])
    np.testing.assert_allclose(np.concatenate(steps), whole, atol=1e-4, rtol=0)


def test_bad_prompt_and_settings_fail_at_the_call(generator) -> None:
    with pytest.raises(TokenizerError, match="'#'"):
        generator.generate("#hashtag", max_new_tokens=5)
    with pytest.raises(SamplingError, match="--max-new-tokens"):
        generator.generate("To", max_new_tokens=0)
    with pytest.raises(SamplingError, match="--temperature"):
        generator.generate("To", temperature=-0.5)
