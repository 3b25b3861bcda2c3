"""A whole stack's hand-written backward equals autograd through the same math in plain torch
ops (float64, 1e-6), and the state carried between calls continues a sequence exactly."""

from __future__ import annotations

import pytest
import torch

from textgen_core.models.stack.model import Stack
from textgen_core.models.stack.spec import StackConfig

LAYERS = {
    "transformer": [{"type": "Embedding"}, {"type": "PositionalEmbedding"}, {"type": "Block"},
                    {"type": "MultiHeadSelfAttention", "n_head": 2}, {"type": "LayerNorm"},
                    {"type": "TemporalDense"}, {"type": "CrossEntropyLoss"}],
    "recurrent": [{"type": "Embedding"}, {"type": "RNN", "hidden_size": 12}, {"type": "LSTM"},
                  {"type": "TemporalDense", "out_features": 16}, {"type": "Dropout", "p": 0.0},
                  {"type": "TemporalDense"}, {"type": "CrossEntropyLoss"}],
    "mixed": [{"type": "Embedding"}, {"type": "PositionalEmbedding"}, {"type": "Block"},
              {"type": "LSTM"}, {"type": "TemporalDense"}, {"type": "CrossEntropyLoss"}],
}


def _stack(name: str) -> Stack:
    torch.manual_seed(0)
    config = StackConfig(vocab_size=11, block_size=8, n_embd=8, n_head=2, layers=LAYERS[name])
    return Stack(config).double()


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_full_backward_matches_autograd_on_the_reference_graph(name: str) -> None:
    model = _stack(name)
    idx = torch.randint(0, 11, (3, 8), generator=torch.Generator().manual_seed(1))
    targets = torch.randint(0, 11, (3, 8), generator=torch.Generator().manual_seed(2))
    grads = []
    for reference in (False, True):
        model.zero_grad()
        _, loss, _ = model(idx, targets, reference=reference)
        loss.backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters()})
    assert grads[0].keys() == grads[1].keys() and len(grads[0]) > 0
    for n in grads[0]:
        assert torch.allclose(grads[0][n], grads[1][n], atol=1e-6, rtol=0), n


def test_recurrent_state_continues_a_sequence() -> None:
    model = _stack("recurrent").eval()
    idx = torch.randint(0, 11, (2, 8), generator=torch.Generator().manual_seed(3))
    whole, _, _ = model(idx)
    first, _, state = model(idx[:, :5])
    second, _, _ = model(idx[:, 5:], state=state)
    assert torch.allclose(torch.cat([first, second], 1), whole, atol=1e-12)


def test_dropout_is_active_only_in_training() -> None:
    config = StackConfig(vocab_size=5, n_embd=8, layers=[
        {"type": "Embedding"}, {"type": "Dropout", "p": 0.5}, {"type": "TemporalDense"},
        {"type": "CrossEntropyLoss"}])
    model = Stack(config)
    idx = torch.zeros(1, 4, dtype=torch.long)
    model.eval()
    assert torch.equal(model(idx)[0], model(idx)[0])
    model.train()
    assert not torch.equal(model(idx)[0], model(idx)[0])
