"""Rotary positions: what lets the sampler's cache roll instead of re-reading the window."""

import pytest
import torch

from textgen_core.errors import ConfigError
from textgen_core.models.gpt import GPT, GPTConfig
from textgen_core.models.rotary import _Rotate, inverse_frequencies, rotary_cache, rotary_tables, rotate

CONFIG = GPTConfig(vocab_size=20, block_size=16, n_layer=2, n_head=2, n_embd=16)


def _model(**overrides: object) -> GPT:
    torch.manual_seed(0)
    return GPT(GPTConfig(**{**CONFIG.to_dict(), **overrides})).eval()


def test_rotary_is_the_default_and_has_no_position_table() -> None:
    model = _model()
    assert model.config.positions == "rotary" and model.wpe is None
    assert not any("wpe" in name or "rope" in name for name in model.state_dict())
    assert _model(positions="learned").wpe is not None


def test_configs_saved_before_the_setting_read_as_learned() -> None:
    old = {k: v for k, v in CONFIG.to_dict().items() if k != "positions"}
    assert GPTConfig.from_dict(old).positions == "learned"
    assert GPTConfig.from_dict(CONFIG.to_dict()).positions == "rotary"


def test_logits_depend_only_on_relative_positions() -> None:
    model = _model()
    idx = torch.randint(0, 20, (2, 12))
    with torch.inference_mode():
        at_zero = model(idx)[0]
        far = model(idx, positions=torch.arange(12) + 31 * 16)[0]
        learned = _model(positions="learned")
        assert not torch.allclose(learned(idx)[0], learned(idx, positions=torch.arange(12) + 4)[0])
    torch.testing.assert_close(far, at_zero, atol=1e-4, rtol=0)


def test_a_rolled_cache_equals_a_re_read_when_keys_depend_on_their_token_only() -> None:
    """In a one-layer model a key/value depends on its token and position alone, so dropping
    the oldest cached positions and reading on at position 15 must give exactly what re-reading
    the kept tokens from position 0 gives: only distances between positions matter."""
    model = _model(n_layer=1)
    with torch.no_grad():  # sharp attention, so that positions visibly matter
        model.blocks[0].attn.c_attn.weight.mul_(10.0)
    idx = torch.randint(0, 20, (1, 16))
    with torch.inference_mode():
        _, _, past = model(idx[:, :15])
        rolled = [(k[:, :, 5:], v[:, :, 5:]) for k, v in past]
        after_roll = model(idx[:, 15:], past_key_values=rolled, positions=torch.tensor([15]))[0]
        re_read = model(idx[:, 5:])[0][:, -1:]
        wrong_position = model(idx[:, 15:], past_key_values=rolled,
                               positions=torch.tensor([10]))[0]
    torch.testing.assert_close(after_roll, re_read, atol=1e-5, rtol=1e-5)
    assert (wrong_position - re_read).abs().max() > 1e-2


def test_rotation_preserves_length_and_matches_a_complex_rotation() -> None:
    x = torch.randn(1, 3, 2, 8, dtype=torch.float64)
    cos, sin = rotary_tables(torch.arange(3), *(t.double() for t in rotary_cache(8, 3)))
    y = rotate(x, cos, sin)
    torch.testing.assert_close(y.norm(dim=-1), x.norm(dim=-1))
    as_complex = torch.complex(x[..., :4], x[..., 4:])
    angles = torch.arange(3, dtype=torch.float64)[:, None] * inverse_frequencies(8)
    turned = as_complex * torch.polar(torch.ones_like(angles), angles)[None, :, None, :]
    torch.testing.assert_close(y, torch.cat((turned.real, turned.imag), dim=-1), atol=1e-6, rtol=0)


def test_hand_written_rotation_backward_passes_gradcheck() -> None:
    x = torch.randn(2, 5, 3, 8, dtype=torch.float64, requires_grad=True)
    cos, sin = rotary_tables(torch.arange(5) + 7, *(t.double() for t in rotary_cache(8, 12)))
    assert torch.autograd.gradcheck(lambda t: _Rotate.apply(t, cos, sin), (x,))
    # and training takes that path, with the same numbers as the plain one
    with torch.no_grad():
        plain = rotate(x, cos, sin)
    torch.testing.assert_close(rotate(x, cos, sin), plain)


def test_rotary_model_learns(one_torch_thread: None) -> None:
    model = _model()
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    idx = torch.arange(16).remainder(5).view(1, 16).repeat(4, 1)
    losses = []
    for _ in range(30):
        _, loss, _ = model(idx[:, :-1], idx[:, 1:])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.5 * losses[0]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (dict(positions="absolute"), "--positions must be one of rotary, learned"),
        (dict(n_embd=18, n_head=2), "rotary positions need an even head size"),
    ],
)
def test_bad_position_settings_are_named(overrides: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        GPTConfig(**{**CONFIG.to_dict(), **overrides})
    assert GPTConfig(**{**CONFIG.to_dict(), "n_embd": 18, "n_head": 2, "positions": "learned"})
