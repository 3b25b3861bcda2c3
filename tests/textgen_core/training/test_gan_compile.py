"""The GAN with torch.compile: the WGAN-GP penalty's double backward runs through the eager critic.

Compiling is slow on a 2-core CPU (inductor builds a C++ kernel per fused op), so the shapes are
the smallest the trainer accepts and the run stops two adversarial steps after a one-step warm-up.
"""

import json
import math
from pathlib import Path

import pytest
import torch

from textgen_core.models.gan import GAN, GANConfig, draw_noise
from textgen_core.train import main
from textgen_core.training.checkpoint import load_checkpoint
from textgen_core.training.gan_losses import critic_loss, fake_rows, generate_fake

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# Four words and <end> per sentence, so --seq-len 5 holds them all and the generator's unrolled
# graph (one step per position) stays short.
SUBJECTS, VERBS, OBJECTS = ("cats", "dogs", "kings", "birds"), ("see", "fear", "love"), ("moons", "seas")


@pytest.fixture
def short_sentences(tmp_path: Path) -> Path:
    lines = [f"{s} {v} {o}." for s in SUBJECTS for v in VERBS for o in OBJECTS] * 3
    path = tmp_path / "short.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# The capability matrix's row (`--compile on` on the CPU, pytest -m matrix, CI runs it): inductor
# compiles both players' steps here, about 90 s on 2 cores, too long for the default suite.
@pytest.mark.matrix
# Importing inductor (the default backend) loads torch.utils.mkldnn, which warns (torch 2.13).
@pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")
# Dynamo reads `.grad` of each input it guards on; in the generator step the critic's input is
# the generator's output, a non-leaf tensor, and reading its `.grad` warns.
@pytest.mark.filterwarnings("ignore:The .grad attribute of a Tensor that is not a leaf:UserWarning")
def test_gan_trains_past_the_warm_up_with_compile_on(short_sentences: Path, tmp_path: Path) -> None:
    out = tmp_path / "gan.pt"
    code = main(["--model", "gan", "--compile", "on", "--device", "cpu", "--corpus", str(short_sentences),
                 "--out", str(out), "--seq-len", "5", "--vocab-size", "20", "--n-embd", "8",
                 "--n-head", "1", "--ffn-hidden", "8", "--n-mapping", "1", "--n-noise-blocks", "1",
                 "--n-output-blocks", "0", "--critic-layers", "1", "--batch-size", "4",
                 "--critic-steps", "1", "--max-iters", "3", "--mle-iters", "1", "--log-interval", "1",
                 "--eval-interval", "3", "--checkpoint-interval", "3"])
    assert code == 0
    assert load_checkpoint(out, kind="gan")["train_state"]["step"] == 3
    records = [json.loads(line) for line in out.with_suffix(".metrics.jsonl").read_text().splitlines()]
    adversarial = [r for r in records if r["event"] == "train" and r["phase"] == "adversarial"]
    assert [r["step"] for r in adversarial] == [2, 3]
    assert all(math.isfinite(r["gp"]) and r["gp"] > 0 for r in adversarial)


def _critic_grads(gan: GAN, critic: torch.nn.Module, real: torch.Tensor, fake: torch.Tensor,
                  gp_weight: float, penalty_critic: torch.nn.Module | None) -> list[torch.Tensor]:
    gan.discriminator.zero_grad(set_to_none=True)
    torch.manual_seed(1)  # the same interpolates in every call
    loss, _ = critic_loss(critic, real, fake, gp_weight, penalty_critic=penalty_critic)
    loss.backward()
    return [p.grad.clone() for p in gan.discriminator.parameters()]


@pytest.mark.slow
def test_penalty_gradient_reaches_the_compiled_critics_weights() -> None:
    torch.manual_seed(0)
    config = GANConfig(vocab_size=12, seq_len=4, n_embd=8, n_head=1, ffn_hidden=8, n_mapping=1,
                       n_noise_blocks=1, n_output_blocks=0, critic_layers=1)
    gan = GAN(config)
    real = torch.randint(2, 12, (4, 4))
    with torch.no_grad():
        fake = fake_rows(*generate_fake(gan.generator, draw_noise(config, 4)), config.critic_input)
    # aot_eager runs AOTAutograd, where the double backward through a compiled graph fails,
    # without inductor's C++ build; the slow test above trains with the default backend.
    compiled = torch.compile(gan.discriminator, backend="aot_eager")

    eager = _critic_grads(gan, gan.discriminator, real, fake, 10.0, None)
    with_penalty = _critic_grads(gan, compiled, real, fake, 10.0, gan.discriminator)
    without_penalty = _critic_grads(gan, compiled, real, fake, 0.0, gan.discriminator)

    for a, b in zip(eager, with_penalty, strict=True):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-6)
    assert any(not torch.allclose(a, b) for a, b in zip(with_penalty, without_penalty, strict=True))
