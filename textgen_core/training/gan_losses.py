"""The objectives of the text GAN: WGAN-GP for both players, teacher-forced MLE for the warm-up.

Critic:    D(fake) - D(real) + λ · (‖∇D(x̂)‖₂ - 1)²,  x̂ between real one-hot and fake rows
Generator: -D(fake)  (+ mle_weight · MLE, optional)

What the critic reads of a generated sentence (`critic_input`):
- "straight-through": the one-hot rows of the chosen words in the forward pass, with the gradient
  of the soft probabilities in the backward pass (one_hot + p - p.detach()). Real and generated
  rows then look alike (both one-hot), so the critic cannot win by spotting soft rows.
- "soft": the probabilities themselves (the seed's choice), which a critic tells from one-hot
  real rows by their sharpness alone.

With torch.compile the critic's forward is compiled, but the penalty differentiates through the
critic with `create_graph=True` (a double backward), which a compiled graph cannot run: the
penalty goes through the eager critic module instead (`penalty_critic`), which holds the same
weights, so its gradient reaches them all the same.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from runtime.word_tokenizer import END_ID
from textgen_core.models.gan import Discriminator, Generator


def sentence_mask(real: Tensor) -> Tensor:
    """True for the words of each row and its first `<end>`; False for the padding after it."""
    is_end = real == END_ID
    ended_before = (is_end.long().cumsum(1) - is_end.long()) > 0
    return ~ended_before


def mle_loss(generator: Generator, real: Tensor, noise: dict[str, Tensor]) -> Tensor:
    """Mean cross-entropy (nats/word) of the real words and their `<end>`, teacher-forced."""
    logits = generator.teacher_forced_logits(real, noise["global_noise"], noise["step_noise"],
                                             noise["block_noise"])
    mask = sentence_mask(real)
    return F.cross_entropy(logits[mask], real[mask])


def fake_rows(ids: Tensor, probs: Tensor, critic_input: str) -> Tensor:
    """(N, S, V) rows the critic reads for generated sentences (see the module docstring)."""
    if critic_input == "soft":
        return probs
    one_hot = F.one_hot(ids, probs.shape[-1]).to(probs.dtype)
    return one_hot + probs - probs.detach()


def generate_fake(generator: Generator, noise: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
    return generator(noise["global_noise"], noise["step_noise"], noise["block_noise"],
                     noise.get("uniform"))


def gradient_penalty(critic: Discriminator, real: Tensor, fake: Tensor) -> Tensor:
    """(‖∇D(x̂)‖₂ - 1)² on random interpolates of real one-hot rows and fake rows."""
    real_rows = F.one_hot(real, fake.shape[-1]).to(fake.dtype)
    eps = torch.rand(real.shape[0], 1, 1, device=fake.device)
    mixed = (eps * real_rows + (1 - eps) * fake.detach()).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(mixed).sum(), mixed, create_graph=True)
    return ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()


def critic_loss(critic: Discriminator, real: Tensor, fake: Tensor, gp_weight: float,
                penalty_critic: Discriminator | None = None) -> tuple[Tensor, dict[str, float]]:
    """WGAN-GP critic loss; `fake` must not carry the generator's graph (detach it).

    `penalty_critic` is the eager module behind a compiled `critic` (see the module docstring);
    None when `critic` itself is eager."""
    d_real = critic(real).mean()
    d_fake = critic(fake).mean()
    if gp_weight > 0:
        gp = gradient_penalty(critic if penalty_critic is None else penalty_critic, real, fake)
    else:
        gp = torch.zeros((), device=fake.device)
    loss = d_fake - d_real + gp_weight * gp
    return loss, {"d_loss": float(loss.detach()), "wasserstein": float((d_real - d_fake).detach()),
                  "gp": float(gp.detach())}


def generator_loss(critic: Discriminator, fake: Tensor) -> Tensor:
    return -critic(fake).mean()
