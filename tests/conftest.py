"""Shared fixtures: a tiny corpus and a tiny trained GPT checkpoint, made once per session."""

from __future__ import annotations

import os
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
