"""Shared fixtures: a tiny corpus and a tiny trained GPT checkpoint, made once per session."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from runtime.tokenizer import CharTokenizer
from textgen_core.models.gpt import GPT, GPTConfig
from textgen_core.training.checkpoint import make_checkpoint, save_checkpoint

TINY_TEXT = (
    "To be, or not to be, that is the question:\n"
    "Whether 'tis nobler in the mind to suffer\n"
    "The slings and arrows of outrageous fortune,\n"
    "Or to take arms against a sea of troubles\n"
    "And by opposing end them. To die: to sleep;\n"
) * 40


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Token arrays and corpora of the tests go to a temporary cache, never the user's."""
    os.environ["TEXTGEN_CACHE"] = str(tmp_path_factory.mktemp("textgen-cache"))


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    """Tiny models gain nothing from intra-op threads, and on a shared 2-core machine thread
    hand-offs dominate each small op; restored afterwards. A module of tiny-model tests opts in
    with `pytestmark = pytest.mark.usefixtures("one_torch_thread")`."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_text() -> str:
    return TINY_TEXT


@pytest.fixture(scope="session")
def tiny_corpus_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("corpus") / "hamlet.txt"
    path.write_text(TINY_TEXT, encoding="utf-8")
    return path


def _train_tiny_gpt(steps: int = 60, block_size: int = 32) -> tuple[GPT, CharTokenizer]:
    torch.manual_seed(0)
    tokenizer = CharTokenizer.from_text(TINY_TEXT)
    data = torch.tensor(tokenizer.encode(TINY_TEXT), dtype=torch.long)
    config = GPTConfig(
        vocab_size=tokenizer.vocab_size, block_size=block_size, n_layer=2, n_head=2, n_embd=32
    )
    model = GPT(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(steps):
        starts = torch.randint(0, len(data) - block_size - 1, (16,))
        x = torch.stack([data[s : s + block_size] for s in starts])
        y = torch.stack([data[s + 1 : s + block_size + 1] for s in starts])
        _, loss, _ = model(x, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return model.eval(), tokenizer


@pytest.fixture(scope="session")
def tiny_gpt_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real (briefly trained) 2-layer GPT checkpoint on the tiny corpus; treat as read-only."""
    model, tokenizer = _train_tiny_gpt()
    payload = make_checkpoint(
        kind="gpt",
        model_config=model.config.to_dict(),
        tokenizer=tokenizer.to_dict(),
        model_state=model.state_dict(),
        train_state={"step": 60, "val_loss": float("nan")},
    )
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    save_checkpoint(payload, path)
    return path


@pytest.fixture(scope="session")
def exported_tiny(tiny_gpt_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The tiny checkpoint exported once per session: fp32 ONNX, int8 ONNX, TorchScript."""
    from export.cli import export_checkpoint

    folder = tmp_path_factory.mktemp("exported")
    ckpt = folder / "tiny.pt"
    ckpt.write_bytes(tiny_gpt_checkpoint.read_bytes())
    lines: list[str] = []
    onnx_path, int8_path = export_checkpoint(str(ckpt), "onnx", quantize="int8", report=lines.append)
    (ts_path,) = export_checkpoint(str(ckpt), "torchscript", report=lines.append)
    return {"checkpoint": ckpt, "onnx": onnx_path, "int8": int8_path, "torchscript": ts_path,
            "report": "\n".join(lines)}


# --- The text GAN (issue 4): a corpus of short sentences and a tiny trained GAN. ---

def _sentence_corpus_text() -> str:
    import random

    rng = random.Random(0)
    subjects = ["the cat", "a dog", "my friend", "the king", "his horse", "our queen"]
    verbs = ["sees", "likes", "follows", "finds", "loves", "fears"]
    objects = ["the moon", "a bird", "the sea", "her brother", "the castle", "a ghost"]
    ends = [".", "!", "?", ", i think."]
    lines = []
    for i in range(240):
        lines.append(f"{rng.choice(subjects).capitalize()} {rng.choice(verbs)} "
                     f"{rng.choice(objects)}{rng.choice(ends)}")
        if i % 6 == 5:
            lines.append("")
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="session")
def sentence_corpus_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """240 short sentences from a small grammar (a word-level corpus for the GAN)."""
    path = tmp_path_factory.mktemp("sentences") / "sentences.txt"
    path.write_text(_sentence_corpus_text(), encoding="utf-8")
    return path


TINY_GAN_FLAGS = ["--model", "gan", "--seq-len", "8", "--vocab-size", "40", "--n-embd", "16",
                  "--n-head", "2", "--ffn-hidden", "32", "--n-mapping", "2", "--n-noise-blocks", "1",
                  "--n-output-blocks", "1", "--critic-layers", "1", "--batch-size", "8",
                  "--critic-steps", "1", "--log-interval", "2", "--device", "cpu"]


@pytest.fixture(scope="session")
def tiny_gan_checkpoint(sentence_corpus_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny GAN trained through the CLI for 12 steps (8 MLE, 4 adversarial); read-only."""
    from textgen_core.train import main

    out = tmp_path_factory.mktemp("gan") / "gan.pt"
    code = main([*TINY_GAN_FLAGS, "--corpus", str(sentence_corpus_file), "--out", str(out),
                 "--max-iters", "12", "--mle-iters", "8", "--eval-interval", "6",
                 "--checkpoint-interval", "12"])
    assert code == 0
    return out


@pytest.fixture(scope="session")
def exported_tiny_gan(tiny_gan_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from export.cli import export_checkpoint

    folder = tmp_path_factory.mktemp("gan-exported")
    ckpt = folder / "gan.pt"
    ckpt.write_bytes(tiny_gan_checkpoint.read_bytes())
    lines: list[str] = []
    (onnx_path,) = export_checkpoint(str(ckpt), "onnx", report=lines.append)
    (ts_path,) = export_checkpoint(str(ckpt), "torchscript", report=lines.append)
    return {"checkpoint": ckpt, "onnx": onnx_path, "torchscript": ts_path, "report": "\n".join(lines)}


@pytest.fixture
def tiny_gan_flags() -> list[str]:
    """Flags of a tiny, fast GAN run (add --corpus, --out, --max-iters, --mle-iters)."""
    return list(TINY_GAN_FLAGS)
