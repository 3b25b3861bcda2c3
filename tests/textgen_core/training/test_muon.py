"""Muon (hidden matrices) + AdamW (the rest): it orthogonalises, it trains, it checkpoints."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from textgen_core.errors import ConfigError
from textgen_core.models.gpt import GPT, GPTConfig
from textgen_core.training.checkpoint import load_checkpoint, make_checkpoint, save_checkpoint
from textgen_core.training.config import TrainConfig
from textgen_core.training.muon import MuonAdamW, orthogonalize
from textgen_core.training.optimizer import make_optimizer
from textgen_core.training.presets import get_preset

TEXT = "to be or not to be, that is the question; whether tis nobler in the mind to suffer\n" * 8
CONFIG = dict(block_size=16, n_layer=2, n_head=2, n_embd=32)


def _batches(n: int, seed: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    chars = sorted(set(TEXT))
    data = torch.tensor([chars.index(c) for c in TEXT])
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        starts = torch.randint(len(data) - 17, (8,), generator=g)
        out.append((torch.stack([data[s:s + 16] for s in starts]),
                    torch.stack([data[s + 1:s + 17] for s in starts])))
    return out


def _setup(positions: str = "rotary") -> tuple[GPT, torch.optim.Optimizer]:
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=len(set(TEXT)), positions=positions, **CONFIG))
    cfg = TrainConfig(max_iters=200, learning_rate=3e-3, optimizer="muon", muon_lr=0.02, beta2=0.95)
    return model, make_optimizer(model, cfg, torch.device("cpu"))


def _train(model: GPT, optimizer: torch.optim.Optimizer, batches) -> list[float]:
    losses = []
    for x, y in batches:
        _, loss, _ = model(x, y)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(float(loss.detach()))
    return losses


def test_orthogonalize_equalises_singular_values() -> None:
    q, _ = torch.linalg.qr(torch.randn(48, 16, generator=torch.Generator().manual_seed(0)))
    update = q @ torch.diag(torch.logspace(-1, 1, 16))  # singular values 0.1 .. 10
    singular = torch.linalg.svdvals(orthogonalize(update))
    assert singular.shape == (16,) and singular.min() > 0.5 and singular.max() < 1.3


def test_hidden_matrices_on_muon_embeddings_and_gains_on_adamw() -> None:
    model, optimizer = _setup(positions="learned")  # with a position table too
    assert isinstance(optimizer, MuonAdamW)
    kinds = {id(p): g["kind"] for g in optimizer.param_groups for p in g["params"]}
    assert kinds[id(model.wte.weight)] == "adamw" and kinds[id(model.wpe.weight)] == "adamw"
    assert kinds[id(model.blocks[0].attn.c_attn.weight)] == "muon"
    assert kinds[id(model.blocks[0].ln_1.weight)] == "adamw"
    assert len(kinds) == len(list(model.parameters()))  # every parameter, once


def test_muon_lowers_the_loss() -> None:
    model, optimizer = _setup()
    losses = _train(model, optimizer, _batches(40))
    assert sum(losses[-5:]) / 5 < losses[0] - 1.0


def test_state_survives_a_weights_only_checkpoint(tmp_path: Path) -> None:
    model, optimizer = _setup()
    batches = _batches(6)
    _train(model, optimizer, batches[:3])
    path = tmp_path / "m.pt"
    save_checkpoint(make_checkpoint(kind="gpt", model_config=model.config.to_dict(), tokenizer={},
                                    model_state=model.state_dict(),
                                    optimizer_state=optimizer.state_dict()), path)
    expected = _train(model, optimizer, batches[3:])
    loaded = load_checkpoint(path)
    model2, optimizer2 = _setup()
    model2.load_state_dict(loaded["model"])
    optimizer2.load_state_dict(loaded["optimizer"])
    assert _train(model2, optimizer2, batches[3:]) == expected


def test_unknown_optimizer_names_the_flag() -> None:
    with pytest.raises(ConfigError, match="--optimizer must be one of adamw, muon, got 'sgd'"):
        TrainConfig(optimizer="sgd")
    with pytest.raises(ConfigError, match="--muon-lr must be a finite number >= 0"):
        TrainConfig(muon_lr=-1.0)


def test_fast_preset_is_the_baby_shape_on_muon() -> None:
    fast = get_preset("fast")
    assert fast["model"]["n_layer"] == 6 and fast["model"]["n_embd"] == 384
    TrainConfig(**fast["train"])  # valid as written
    assert fast["train"]["optimizer"] == "muon"


def test_train_cli_refuses_an_unknown_optimizer(tiny_corpus_file: Path, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    from textgen_core.train import main

    args = ["--corpus", str(tiny_corpus_file), "--out", str(tmp_path / "m.pt"), "--preset", "nano",
            "--device", "cpu", "--optimizer", "sgd"]
    # The flag names its choices (issue 29), so the parser refuses it in one usage line.
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.splitlines()[-1].endswith("argument --optimizer: invalid choice: 'sgd' (choose from "
                                         "'adamw', 'muon')")
    assert "Traceback" not in err
    assert not (tmp_path / "m.pt").exists()


def test_train_cli_with_muon_saves_and_resumes(tiny_corpus_file: Path, tmp_path: Path) -> None:
    from textgen_core.train import main

    out = tmp_path / "m.pt"
    args = ["--corpus", str(tiny_corpus_file), "--out", str(out), "--preset", "nano", "--device", "cpu",
            "--optimizer", "muon", "--sample-tokens", "0", "--eval-iters", "2"]
    assert main([*args, "--max-iters", "20"]) == 0
    saved = load_checkpoint(out)
    assert [g["kind"] for g in saved["optimizer"]["param_groups"]] == ["muon", "adamw", "adamw"]
    assert main([*args, "--max-iters", "30", "--resume"]) == 0
    assert load_checkpoint(out)["train_state"]["step"] == 30
