"""One optimizer step on a fixed batch lowers each player's own loss."""

import torch

from textgen_core.models.gan import GAN, GANConfig, draw_noise
from textgen_core.training.gan_losses import (
    critic_loss,
    fake_rows,
    generate_fake,
    generator_loss,
    gumbel_beta,
    mle_loss,
    sentence_mask,
)


def _setup(critic_input: str = "straight-through") -> tuple[GAN, torch.Tensor, dict]:
    torch.manual_seed(0)
    config = GANConfig(vocab_size=25, seq_len=6, n_embd=16, n_head=2, ffn_hidden=32, n_mapping=2,
                       n_noise_blocks=1, n_output_blocks=1, critic_layers=1, critic_input=critic_input)
    real = torch.randint(2, 25, (8, 6))
    real[:, 4:] = 0  # four words, then <end>
    return GAN(config), real, draw_noise(config, 8, torch.Generator().manual_seed(5))


def test_sentence_mask_keeps_the_first_end_only() -> None:
    real = torch.tensor([[5, 6, 0, 0], [5, 0, 0, 0]])
    assert sentence_mask(real).tolist() == [[True, True, True, False], [True, True, False, False]]


def test_critic_step_lowers_the_critic_loss() -> None:
    gan, real, noise = _setup()
    with torch.no_grad():
        fake = fake_rows(*generate_fake(gan.generator, noise), gan.config.critic_input)
    opt = torch.optim.Adam(gan.discriminator.parameters(), lr=1e-3)
    torch.manual_seed(1)  # the same interpolates before and after the step
    before, _ = critic_loss(gan.discriminator, real, fake, gp_weight=10.0)
    opt.zero_grad()
    before.backward()
    opt.step()
    torch.manual_seed(1)
    after, _ = critic_loss(gan.discriminator, real, fake, gp_weight=10.0)
    assert after.item() < before.item()


def test_generator_step_lowers_the_generator_loss() -> None:
    for critic_input in ("straight-through", "soft", "gumbel"):
        gan, _, noise = _setup(critic_input)
        opt = torch.optim.Adam(gan.generator.parameters(), lr=1e-2)
        torch.manual_seed(2)  # the same Gumbel noise before and after the step
        before = generator_loss(gan.discriminator, fake_rows(*generate_fake(gan.generator, noise), critic_input))
        opt.zero_grad()
        before.backward()
        opt.step()
        with torch.no_grad():
            torch.manual_seed(2)
            after = generator_loss(gan.discriminator, fake_rows(*generate_fake(gan.generator, noise), critic_input))
        assert after.item() < before.item(), critic_input


def test_mle_step_lowers_the_mle_loss() -> None:
    gan, real, noise = _setup()
    opt = torch.optim.Adam(gan.generator.parameters(), lr=1e-2)
    before = mle_loss(gan.generator, real, noise)
    opt.zero_grad()
    before.backward()
    opt.step()
    with torch.no_grad():
        after = mle_loss(gan.generator, real, noise)
    assert after.item() < before.item()


def test_gumbel_rows_are_relaxed_samples_that_sharpen_with_beta() -> None:
    """RelGAN's relaxation: each row a distribution; at beta 1 soft, at a large beta nearly the
    one-hot of a word drawn from the probabilities (the likely word most often); the gradient
    reaches the probabilities at every beta."""
    probs = torch.tensor([[[0.7, 0.2, 0.1]]]).repeat(4000, 1, 1).requires_grad_(True)
    ids = torch.zeros(4000, 1, dtype=torch.long)
    torch.manual_seed(0)
    soft = fake_rows(ids, probs, "gumbel", beta=1.0)
    sharp = fake_rows(ids, probs, "gumbel", beta=1000.0)
    for rows in (soft, sharp):
        assert torch.allclose(rows.sum(-1), torch.ones(4000, 1), atol=1e-5)
    assert soft.max(-1).values.mean() < 0.9 < sharp.max(-1).values.mean()
    picked = sharp.argmax(-1).flatten().bincount(minlength=3) / 4000
    assert torch.allclose(picked, torch.tensor([0.7, 0.2, 0.1]), atol=0.04)
    (soft[:, 0, 0].sum() + sharp[:, 0, 0].sum()).backward()
    assert probs.grad is not None and probs.grad.abs().sum() > 0


def test_gumbel_beta_rises_exponentially_from_one_to_its_maximum() -> None:
    assert gumbel_beta(100.0, 0.0) == 1.0 and gumbel_beta(100.0, 1.0) == 100.0
    assert abs(gumbel_beta(100.0, 0.5) - 10.0) < 1e-9
    assert gumbel_beta(100.0, -0.2) == 1.0 and gumbel_beta(100.0, 3.0) == 100.0
