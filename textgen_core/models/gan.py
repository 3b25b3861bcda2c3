"""The text GAN: a word-by-word generator driven by noise, and a transformer critic.

After gmongaras/PyTorch_TextGen (the "GAN_TextGen" seed), with StyleGAN's mapping network
(Karras et al. 2019) and the critic objective of WGAN-GP (Gulrajani et al. 2017).

Generator, for a batch of N and S positions (E = n_embd, V = vocab_size):
    style = mapping(global noise)                            (N, S, E)  [1-d option: (N, S) → broadcast]
    for t in 0..S-1:
        x = [feedback(token_0) .. feedback(token_{t-1}), step_noise_t] + positions   (N, t+1, E)
        x = noise blocks (self-attn, injected noise, cross-attn to style, feed-forward) → output blocks
        probs_t = softmax(head(x[:, -1]))                       (N, V)   keeps its gradient
        token_t = choice(probs_t) (argmax, or inverse-CDF sampling with a uniform draw of
                  softmax(logits_t / temperature); temperature 0 is argmax), detached
    probs = stack(probs_t)                                      (N, S, V)

Every random input is an argument, so the same noise gives the same sentence in torch, ONNX
Runtime and TorchScript; `draw_noise` makes them for training.

Rebuild the GAN and its word vocabulary from a loaded checkpoint dict.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from runtime.sampler import GREEDY_BELOW
from runtime.word_tokenizer import WordTokenizer
from textgen_core.errors import CheckpointError, ConfigError
from textgen_core.models.checkpoint_checks import metadata_errors, require_kind
from textgen_core.models.gan_blocks import (
    Attention,
    FeedForward,
    MappingNetwork,
    NoiseBlock,
    OutputBlock,
    sinusoidal_positions,
)
from textgen_core.models.size_limits import build_checked, check_counts, check_setting_types

NOISE_DISTRIBUTIONS = ("normal", "uniform", "truncated")
TOKEN_CHOICES = ("sample", "argmax")
GAN_LAYER_COUNTS = ("n_mapping", "n_noise_blocks", "n_output_blocks", "critic_layers")  # each <= MAX_LAYERS
CRITIC_INPUTS = ("straight-through", "soft", "gumbel")
TRUNCATION = 1.5


@dataclass
class GANConfig:
    vocab_size: int = 5000
    seq_len: int = 16
    n_embd: int = 64
    n_head: int = 4
    ffn_hidden: int = 256
    n_mapping: int = 4
    n_noise_blocks: int = 2
    n_output_blocks: int = 1
    noise_1d: bool = False
    noise_dist: str = "normal"
    token_choice: str = "sample"
    critic_input: str = "straight-through"
    critic_layers: int = 2

    def __post_init__(self) -> None:
        for name in ("vocab_size", "seq_len", "n_embd", "n_head", "ffn_hidden", "n_mapping",
                     "n_noise_blocks", "critic_layers"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ConfigError(f"--{name.replace('_', '-')} must be a positive integer, got {value!r}")
        if not isinstance(self.n_output_blocks, int) or self.n_output_blocks < 0:
            raise ConfigError(f"--n-output-blocks must be >= 0, got {self.n_output_blocks!r}")
        if self.vocab_size <= 2:
            raise ConfigError(f"--vocab-size ({self.vocab_size}) must be larger than the 2 special "
                              "tokens (<end>, <unk>)")
        if self.seq_len < 2:
            raise ConfigError(f"--seq-len must be at least 2 (words plus <end>), got {self.seq_len}")
        if self.n_embd % self.n_head:
            raise ConfigError(f"--n-embd ({self.n_embd}) must be divisible by --n-head ({self.n_head})")
        if self.n_embd % 2:
            raise ConfigError(f"--n-embd must be even (sinusoidal positions), got {self.n_embd}")
        for name, allowed in (("noise_dist", NOISE_DISTRIBUTIONS), ("token_choice", TOKEN_CHOICES),
                              ("critic_input", CRITIC_INPUTS)):
            if getattr(self, name) not in allowed:
                raise ConfigError(f"--{name.replace('_', '-')} must be one of {', '.join(allowed)}, "
                                  f"got {getattr(self, name)!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GANConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown GAN model setting(s): {', '.join(unknown)}")
        return cls(**data)

    @property
    def style_width(self) -> int:
        """Width of the mapping network: S for the 1-d noise, E otherwise."""
        return self.seq_len if self.noise_1d else self.n_embd


def noise_shapes(config: GANConfig, batch: int) -> dict[str, tuple[int, ...]]:
    """Shapes of the generator's random inputs (the ONNX inputs of the same names)."""
    S, E = config.seq_len, config.n_embd
    shapes = {
        "global_noise": (batch, S) if config.noise_1d else (batch, S, E),
        "step_noise": (batch, S, E),
        "block_noise": (batch, config.n_noise_blocks, S, E),
    }
    if config.token_choice == "sample":
        shapes["uniform"] = (batch, S)
    return shapes


def draw_noise(config: GANConfig, batch: int, generator: torch.Generator | None = None,
               device: torch.device | str = "cpu") -> dict[str, Tensor]:
    noise = {}
    for name, shape in noise_shapes(config, batch).items():
        if name == "uniform":
            noise[name] = torch.rand(shape, generator=generator)
        elif config.noise_dist == "uniform":
            noise[name] = torch.rand(shape, generator=generator) * 2 - 1
        elif config.noise_dist == "truncated":
            noise[name] = nn.init.trunc_normal_(torch.empty(shape), a=-TRUNCATION, b=TRUNCATION,
                                                generator=generator)
        else:
            noise[name] = torch.randn(shape, generator=generator)
    return {k: v.to(device) for k, v in noise.items()}


def inverse_cdf(probs: Tensor, u: Tensor, vocab_size: int) -> Tensor:
    """The first id whose cumulative probability reaches u: (N, V), (N, 1) -> (N,).
    `vocab_size` is a Python int so that the traced graph holds a constant, not a shape op."""
    below = (probs.cumsum(-1) < u).sum(-1)
    return below.clamp(max=vocab_size - 1)


def tempered_choice(logits: Tensor, u: Tensor, temperature: Tensor, vocab_size: int) -> Tensor:
    """A word drawn from softmax(logits / T) by inverse CDF; below GREEDY_BELOW the argmax, as
    runtime/sampler.py decides (dividing by a smaller T would overflow). At T = 1 it draws the
    same word as `inverse_cdf(logits.softmax(-1), u)`: dividing by 1 is exact."""
    sampled = inverse_cdf((logits / temperature.clamp(min=GREEDY_BELOW)).softmax(-1), u, vocab_size)
    return torch.where(temperature < GREEDY_BELOW, logits.argmax(dim=-1), sampled)


class Generator(nn.Module):
    def __init__(self, config: GANConfig) -> None:
        super().__init__()
        self.config = config
        E, V = config.n_embd, config.vocab_size
        self.mapping = MappingNetwork(config.style_width, config.n_mapping)
        self.feedback = nn.Linear(V, E, bias=False)  # applied to one-hot tokens, i.e. a gather
        self.register_buffer("positions", sinusoidal_positions(config.seq_len, E), persistent=False)
        self.noise_blocks = nn.ModuleList(
            NoiseBlock(E, config.n_head, config.ffn_hidden) for _ in range(config.n_noise_blocks))
        self.output_blocks = nn.ModuleList(
            OutputBlock(E, config.n_head, config.ffn_hidden) for _ in range(config.n_output_blocks))
        self.head = nn.Linear(E, V)

    def style(self, global_noise: Tensor) -> Tensor:
        w = self.mapping(global_noise)
        if self.config.noise_1d:  # (N, S) → (N, S, E): the cheap 1-d noise of the seed
            w = w.unsqueeze(-1).expand(-1, -1, self.config.n_embd)
        return w

    def embed_tokens(self, ids: Tensor) -> Tensor:
        """feedback(one_hot(ids)) without building the one-hot: column `id` of the weight."""
        return F.embedding(ids, self.feedback.weight.t())

    def step_logits(self, prev: Tensor | None, step_noise: Tensor, block_noise: Tensor,
                    style: Tensor) -> Tensor:
        """Logits (N, V) of the next word after the embedded words `prev` (N, t, E)."""
        x = step_noise if prev is None else torch.cat([prev, step_noise], dim=1)
        T = x.shape[1]
        x = x + self.positions[:T]
        for b, block in enumerate(self.noise_blocks):
            x = block(x, block_noise[:, b, :T], style)
        for block in self.output_blocks:
            x = block(x)
        return self.head(x[:, -1])

    def step_probs(self, global_noise: Tensor, step_noise: Tensor, block_noise: Tensor,
                   uniform: Tensor | None = None, temperature: Tensor | None = None
                   ) -> tuple[list[Tensor], list[Tensor]]:
        """Per step: probabilities (N, V) with their gradient, and the chosen ids (N,), detached.
        `temperature` (a 0-d tensor; None: 1) reshapes only the sampled choice, never `probs`."""
        style = self.style(global_noise)
        probs: list[Tensor] = []
        ids: list[Tensor] = []
        prev: Tensor | None = None
        for t in range(self.config.seq_len):
            logits = self.step_logits(prev, step_noise[:, t : t + 1], block_noise, style)
            p = logits.softmax(-1)
            chosen_from = p.detach()  # the fed-back token carries no gradient (seed, step 9)
            if uniform is None:
                token = chosen_from.argmax(dim=-1)
            elif temperature is None:
                token = inverse_cdf(chosen_from, uniform[:, t : t + 1], self.config.vocab_size)
            else:
                token = tempered_choice(logits.detach(), uniform[:, t : t + 1], temperature,
                                        self.config.vocab_size)
            emb = self.embed_tokens(token)[:, None]
            prev = emb if prev is None else torch.cat([prev, emb], dim=1)
            probs.append(p)
            ids.append(token)
        return probs, ids

    def forward(self, global_noise: Tensor, step_noise: Tensor, block_noise: Tensor,
                uniform: Tensor | None = None, temperature: Tensor | None = None
                ) -> tuple[Tensor, Tensor]:
        """Token ids (N, S) int64 and probabilities (N, S, V) (the model's, at temperature 1)."""
        if self.config.token_choice == "argmax":
            uniform = None
        probs, ids = self.step_probs(global_noise, step_noise, block_noise, uniform, temperature)
        return torch.stack(ids, dim=1), torch.stack(probs, dim=1)

    def teacher_forced_logits(self, real: Tensor, global_noise: Tensor, step_noise: Tensor,
                              block_noise: Tensor) -> Tensor:
        """Logits (N, S, V) of each real word given the real words before it (MLE warm-up)."""
        style = self.style(global_noise)
        emb = self.embed_tokens(real)
        logits = [self.step_logits(emb[:, :t] if t else None, step_noise[:, t : t + 1],
                                   block_noise, style) for t in range(self.config.seq_len)]
        return torch.stack(logits, dim=1)


class CriticBlock(nn.Module):
    """Pre-norm transformer encoder block."""

    def __init__(self, dim: int, n_head: int, hidden: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, n_head)
        self.norm2 = nn.LayerNorm(dim)
        self.ffn = FeedForward(dim, hidden)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.ffn(self.norm2(x))


class Discriminator(nn.Module):
    """The critic: a bias-free Linear(V, E) over word distributions, sinusoidal positions
    concatenated (width 2E), a learned CLS token, transformer blocks, Linear(2E, 1) on CLS."""

    def __init__(self, config: GANConfig) -> None:
        super().__init__()
        self.config = config
        E, V = config.n_embd, config.vocab_size
        self.embed = nn.Linear(V, E, bias=False)
        self.register_buffer("positions", sinusoidal_positions(config.seq_len, E), persistent=False)
        self.cls = nn.Parameter(torch.randn(1, 1, 2 * E) * 0.02)
        self.blocks = nn.ModuleList(
            CriticBlock(2 * E, config.n_head, config.ffn_hidden) for _ in range(config.critic_layers))
        self.norm = nn.LayerNorm(2 * E)
        self.out = nn.Linear(2 * E, 1)

    def forward(self, x: Tensor) -> Tensor:
        """Scores (N,) of word ids (N, S) (real sentences, read by a gather) or of word
        distributions (N, S, V) (generated sentences, interpolates)."""
        is_ids = x.dtype in (torch.int64, torch.int32)
        h = F.embedding(x, self.embed.weight.t()) if is_ids else self.embed(x)  # (N, S, E)
        N, S, E = h.shape
        h = torch.cat([h, self.positions[:S].expand(N, S, E)], dim=-1)  # (N, S, 2E)
        h = torch.cat([self.cls.expand(N, 1, 2 * E), h], dim=1)
        for block in self.blocks:
            h = block(h)
        return self.out(self.norm(h[:, 0])).squeeze(-1)


class GAN(nn.Module):
    """Both players in one module, so one state_dict (and one checkpoint) holds them."""

    def __init__(self, config: GANConfig) -> None:
        super().__init__()
        self.config = config
        self.generator = Generator(config)
        self.discriminator = Discriminator(config)

    def num_parameters(self) -> dict[str, int]:
        return {"generator": sum(p.numel() for p in self.generator.parameters()),
                "discriminator": sum(p.numel() for p in self.discriminator.parameters())}


def gan_from_checkpoint(payload: dict[str, Any]) -> tuple[GAN, WordTokenizer]:
    """Both players (on CPU, eval mode) and the vocabulary stored in `payload`; sizes are
    bounded before anything is built (models/size_limits.py)."""
    require_kind(payload, "gan")
    settings = check_setting_types(GANConfig, payload.get("model_config"))
    with metadata_errors():
        config = GANConfig.from_dict(settings)
        tokenizer = WordTokenizer.from_dict(payload["tokenizer"])
    if tokenizer.vocab_size != config.vocab_size:
        raise CheckpointError(f"checkpoint vocabulary has {tokenizer.vocab_size} words but the model "
                              f"expects {config.vocab_size}")
    check_counts(config, layers=GAN_LAYER_COUNTS, contexts=("seq_len",))
    gan = build_checked(lambda: GAN(config), payload["model"])
    gan.eval()
    return gan, tokenizer
