"""Generator and critic: shapes, the detached argmax feedback, gradients through soft outputs."""

import pytest
import torch

from textgen_core.errors import ConfigError
from textgen_core.models.gan import GAN, GANConfig, draw_noise, inverse_cdf, tempered_choice


def _config(**overrides) -> GANConfig:
    base = dict(vocab_size=30, seq_len=6, n_embd=16, n_head=2, ffn_hidden=32, n_mapping=2,
                n_noise_blocks=2, n_output_blocks=1, critic_layers=1)
    return GANConfig(**{**base, **overrides})


@pytest.mark.parametrize("overrides", [{}, {"noise_1d": True}, {"token_choice": "argmax"},
                                       {"noise_dist": "truncated"}, {"n_output_blocks": 0}])
def test_shapes(overrides: dict) -> None:
    torch.manual_seed(0)
    config = _config(**overrides)
    gan = GAN(config)
    noise = draw_noise(config, 5, torch.Generator().manual_seed(1))
    if config.noise_1d:
        assert noise["global_noise"].shape == (5, 6)
    assert noise["block_noise"].shape == (5, 2, 6, 16)
    ids, probs = gan.generator(**noise)
    assert ids.shape == (5, 6) and ids.dtype == torch.int64
    assert probs.shape == (5, 6, 30)
    assert torch.allclose(probs.sum(-1), torch.ones(5, 6), atol=1e-5)
    assert gan.discriminator(probs).shape == (5,)
    assert gan.discriminator(ids).shape == (5,)  # real rows: word ids, read by a gather


def test_chosen_words_follow_the_probabilities() -> None:
    config = _config(token_choice="argmax")
    gan = GAN(config)
    ids, probs = gan.generator(**draw_noise(config, 4, torch.Generator().manual_seed(2)))
    assert torch.equal(ids, probs.argmax(-1))


def test_tempered_choice_at_one_is_the_plain_draw() -> None:
    logits = torch.randn(64, 30, generator=torch.Generator().manual_seed(3))
    u = torch.rand(64, 1, generator=torch.Generator().manual_seed(4))
    assert torch.equal(tempered_choice(logits, u, torch.tensor(1.0), 30),
                       inverse_cdf(logits.softmax(-1), u, 30))


@pytest.mark.parametrize("temperature", [0.0, 1e-7])
def test_tempered_choice_below_greedy_is_argmax(temperature: float) -> None:
    logits = torch.randn(64, 30, generator=torch.Generator().manual_seed(5))
    u = torch.rand(64, 1, generator=torch.Generator().manual_seed(6))
    assert torch.equal(tempered_choice(logits, u, torch.tensor(temperature), 30), logits.argmax(-1))


def test_tempered_choice_when_hot_is_near_uniform() -> None:
    """At a huge T every word is about equally likely: u = 0.55 of 10 words is the sixth."""
    logits = torch.tensor([[5.0, -3.0, 0.0, 2.0, 1.0, -1.0, 4.0, 0.5, -2.0, 3.0]])
    assert int(tempered_choice(logits, torch.tensor([[0.55]]), torch.tensor(1e6), 10)) == 5


def test_generator_at_temperature_one_writes_the_untempered_words() -> None:
    torch.manual_seed(0)
    config = _config()
    gan = GAN(config)
    noise = draw_noise(config, 6, torch.Generator().manual_seed(7))
    ids, probs = gan.generator(**noise)
    tempered_ids, tempered_probs = gan.generator(**noise, temperature=torch.tensor(1.0))
    assert torch.equal(ids, tempered_ids) and torch.equal(probs, tempered_probs)
    cold_ids, cold_probs = gan.generator(**noise, temperature=torch.tensor(0.0))
    assert torch.equal(cold_ids, cold_probs.argmax(-1))  # probs stay the model's, at temperature 1


def test_feedback_is_detached_but_soft_outputs_carry_gradient() -> None:
    torch.manual_seed(0)
    config = _config()
    gan = GAN(config)
    noise = draw_noise(config, 3, torch.Generator().manual_seed(3))
    probs, _ = gan.generator.step_probs(noise["global_noise"], noise["step_noise"],
                                        noise["block_noise"], noise["uniform"])
    # A later step depends on an earlier one only through the fed-back (detached) word.
    (none,) = torch.autograd.grad(probs[3].sum(), probs[1], allow_unused=True, retain_graph=True)
    assert none is None
    # The critic's score of the soft outputs reaches the generator's output layer.
    score = gan.discriminator(torch.stack(probs, dim=1)).sum()
    (grad,) = torch.autograd.grad(score, gan.generator.head.weight)
    assert grad.abs().sum() > 0


def test_teacher_forcing_reads_the_real_prefix() -> None:
    torch.manual_seed(0)
    config = _config()
    gen = GAN(config).generator
    noise = draw_noise(config, 2, torch.Generator().manual_seed(4))
    real = torch.randint(2, 30, (2, 6))
    logits = gen.teacher_forced_logits(real, noise["global_noise"], noise["step_noise"], noise["block_noise"])
    changed = real.clone()
    changed[:, 3] = (real[:, 3] + 1) % 30
    again = gen.teacher_forced_logits(changed, noise["global_noise"], noise["step_noise"], noise["block_noise"])
    assert logits.shape == (2, 6, 30)
    assert torch.allclose(logits[:, :4], again[:, :4])  # steps up to 3 do not see word 3
    assert not torch.allclose(logits[:, 4:], again[:, 4:])


@pytest.mark.parametrize(("overrides", "message"), [
    ({"seq_len": 0}, "--seq-len must be a positive integer, got 0"),
    ({"vocab_size": 2}, r"--vocab-size \(2\) must be larger than the 2 special tokens"),
    ({"n_embd": 18, "n_head": 4}, r"--n-embd \(18\) must be divisible by --n-head \(4\)"),
    ({"critic_input": "relaxed"}, "--critic-input must be one of"),
])
def test_config_errors_name_the_flag(overrides: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _config(**overrides)
