import pytest
import torch

from textgen_core.errors import ConfigError
from textgen_core.models.gpt import GPT, GPTConfig

CONFIG = GPTConfig(vocab_size=20, block_size=16, n_layer=2, n_head=2, n_embd=16)


def test_cached_forward_matches_full_forward() -> None:
    torch.manual_seed(0)
    model = GPT(CONFIG).eval()
    idx = torch.randint(0, 20, (2, 12))
    full, _, _ = model(idx)
    first, _, past = model(idx[:, :5], past_key_values=model.empty_cache(2))
    pieces = [first]
    for t in range(5, 12):
        logits, _, past = model(idx[:, t : t + 1], past_key_values=past)
        pieces.append(logits)
    torch.testing.assert_close(torch.cat(pieces, dim=1), full, atol=1e-5, rtol=1e-5)
    assert past[0][0].shape == (2, 2, 12, 8)


def test_every_block_is_a_registered_trainable_parameter() -> None:
    model = GPT(CONFIG)
    names = {name for name, _ in model.named_parameters()}
    assert {f"blocks.{i}.attn.c_attn.weight" for i in range(2)} <= names
    assert "blocks.1.mlp.c_fc.weight" in model.state_dict()


def test_loss_starts_near_uniform() -> None:
    torch.manual_seed(0)
    model = GPT(CONFIG)
    idx, targets = torch.randint(0, 20, (2, 4, 16))
    # Targets unrelated to the input: with tied embeddings a token's own id starts favoured.
    _, loss, _ = model(idx, targets)
    assert abs(float(loss.detach()) - torch.log(torch.tensor(20.0)).item()) < 0.3


def test_context_overflow_is_refused() -> None:
    model = GPT(CONFIG)
    with pytest.raises(ValueError, match="exceed the context"):
        model(torch.zeros((1, 17), dtype=torch.long))


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("n_layer", 0, "--n-layer must be a positive integer"),
        ("n_embd", -8, "--n-embd must be a positive integer"),
        ("n_head", 3, r"--n-embd \(16\) must be divisible by --n-head \(3\)"),
        ("dropout", 1.5, "--dropout must be in"),
    ],
)
def test_impossible_shapes_are_named(field: str, value: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        GPTConfig(**{**CONFIG.to_dict(), field: value})
