"""The window-policy benchmark's teacher-forced readers, on a tiny random model."""

import numpy as np
import pytest
import torch

from benchmarks.window_quality import crop_losses, run, windowed_losses
from textgen_core.models.gpt import GPT, GPTConfig

TOKENS = np.random.default_rng(0).integers(0, 20, 80)


def _model(n_layer: int) -> GPT:
    torch.manual_seed(0)
    return GPT(GPTConfig(vocab_size=20, block_size=8, n_layer=n_layer, n_head=2, n_embd=16)).eval()


def test_every_policy_scores_the_same_tokens() -> None:
    model = _model(2)
    start = 7
    scores = [crop_losses(model, TOKENS, start), windowed_losses(model, TOKENS, start, roll=False),
              windowed_losses(model, TOKENS, start, roll=True)]
    assert {len(s) for s in scores} == {len(TOKENS) - 1 - start}
    assert all(np.isfinite(s).all() for s in scores)


def test_rolling_equals_re_reading_when_keys_depend_on_their_token_only() -> None:
    """One layer: a cached key/value is a function of its token and position, so the roll and
    the slide see identical windows and must score identically; a second layer makes them
    differ (kept keys remember tokens that left the window)."""
    one = _model(1)
    np.testing.assert_allclose(windowed_losses(one, TOKENS, 7, roll=True),
                               windowed_losses(one, TOKENS, 7, roll=False), atol=1e-5)
    two = _model(2)
    assert not np.allclose(windowed_losses(two, TOKENS, 7, roll=True),
                           windowed_losses(two, TOKENS, 7, roll=False), atol=1e-6)


def test_without_a_checkpoint_the_benchmark_says_so(tmp_path: pytest.TempPathFactory) -> None:
    (row,) = run(tmp_path / "missing.pt")
    assert row.name.startswith("skipped: no checkpoint")
