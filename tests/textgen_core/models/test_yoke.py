import pytest
import torch

from textgen_core.errors import ConfigError
from textgen_core.models.gpt import GPT, GPTConfig
from textgen_core.models.yoke import YokeMLP

C, V = 32, 20


def make(yoke: str = "", seed: int = 0) -> GPT:
    torch.manual_seed(seed)
    return GPT(GPTConfig(vocab_size=V, block_size=16, n_layer=3, n_head=2, n_embd=C, yoke=yoke)).eval()


def test_plain_config_and_checkpoint_fields_are_unchanged_by_default() -> None:
    config = GPTConfig()
    assert config.yoke == "" and config.yoke_spec is None and config.yoke_state_size == 0
    # A plain GPT's config dict (checkpoints, ONNX metadata) is exactly what it was before.
    assert "yoke" not in config.to_dict() and GPTConfig.from_dict(config.to_dict()) == config
    yoked = GPTConfig(n_layer=2, yoke="1:8")
    assert GPTConfig.from_dict(yoked.to_dict()) == yoked


@pytest.mark.parametrize(
    ("yoke", "message"),
    [("3:8", "--yoke layer 3 is out of range: --n-layer 3 has layers 0..2"),
     ("1:0", "--yoke hidden size must be a positive integer, got 0"),
     ("1:8:sideways", "--yoke option 'sideways' is unknown")],
)
def test_bad_yoke_is_a_config_error(yoke: str, message: str) -> None:
    with pytest.raises(ConfigError, match="--yoke") as info:
        GPTConfig(n_layer=3, n_head=2, n_embd=C, yoke=yoke)
    assert message in str(info.value)


def test_shapes_and_parameter_counts() -> None:
    plain, yoked, stateful = make(), make("1:8"), make("1:8:stateful")
    assert isinstance(yoked.blocks[1].mlp, YokeMLP)
    assert yoked.blocks[1].mlp.c_fc.weight.shape == (8, C)
    assert yoked.blocks[1].mlp.c_proj.weight.shape == (C, 8)
    assert not isinstance(yoked.blocks[0].mlp, YokeMLP) and not isinstance(yoked.blocks[2].mlp, YokeMLP)
    # The yoke swaps one 4C-wide feed-forward (8 C^2) for an 8-wide one (2 * 8 * C);
    # the stateful one adds the 8 x 8 state map.
    assert plain.num_parameters() - yoked.num_parameters() == 8 * C * C - 2 * 8 * C
    assert stateful.num_parameters() - yoked.num_parameters() == 8 * 8
    assert make("1:8:no-residual").num_parameters() == yoked.num_parameters()
    idx = torch.randint(0, V, (2, 5))
    logits, _, present, hidden = stateful.forward_stateful(idx, torch.randn(2, 8))
    assert logits.shape == (2, 5, V) and hidden.shape == (2, 5, 8) and len(present) == 3
    # Every parameter is registered (the original kept blocks in a plain list, untrained).
    assert any(n.startswith("blocks.1.mlp.c_state") for n, _ in stateful.named_parameters())


@pytest.mark.parametrize(("yoke", "blind"), [("1:8:no-residual", True), ("1:8", False)])
def test_no_residual_routes_everything_through_the_bottleneck(yoke: str, blind: bool) -> None:
    model = make(yoke)
    with torch.no_grad():
        model.blocks[1].mlp.c_fc.weight.zero_()  # the bottleneck now passes nothing
    a = torch.randint(0, V, (1, 6))
    b = (a + 1) % V
    with torch.no_grad():
        same = torch.allclose(model(a)[0], model(b)[0])
    # Without the residual nothing of the input gets past a closed bottleneck; with it, it does.
    assert same is blind


def test_the_state_changes_the_output_and_zero_state_is_no_state() -> None:
    model = make("1:8:stateful")
    idx = torch.randint(0, V, (2, 7))
    with torch.no_grad():
        plain = model(idx)[0]
        zero = model.forward_stateful(idx, torch.zeros(2, 8))[0]
        some = model.forward_stateful(idx, torch.randn(2, 8))[0]
    assert torch.equal(plain, zero)
    assert (some - plain).abs().max() > 1e-4


def test_cached_calls_match_one_call_with_the_same_state() -> None:
    model = make("0:8:stateful")
    idx, state = torch.randint(0, V, (1, 9)), torch.randn(1, 8)
    with torch.no_grad():
        whole, _, _, rows = model.forward_stateful(idx, state)
        first, _, past, rows1 = model.forward_stateful(idx[:, :4], state)
        second, _, _, rows2 = model.forward_stateful(idx[:, 4:], state, past_key_values=past)
    torch.testing.assert_close(torch.cat([first, second], 1), whole, atol=1e-5, rtol=0)
    torch.testing.assert_close(torch.cat([rows1, rows2], 1), rows, atol=1e-5, rtol=0)
