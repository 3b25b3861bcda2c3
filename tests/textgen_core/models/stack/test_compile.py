"""torch.compile traces the hand-written Functions as one graph (fullgraph: no graph breaks, so
no data-dependent Python control flow), and the compiled step computes the eager loss and
gradients. The aot_eager backend runs the same Dynamo + AOTAutograd tracing as inductor on CUDA
without generating kernels, which takes minutes on a CPU."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from textgen_core.models.stack.model import Stack
from textgen_core.models.stack.spec import StackConfig

LAYERS = [{"type": "Embedding"}, {"type": "PositionalEmbedding"}, {"type": "Block"},
          {"type": "RNN"}, {"type": "LSTM"}, {"type": "Dropout", "p": 0.2}, {"type": "LayerNorm"},
          {"type": "TemporalDense"}, {"type": "CrossEntropyLoss"}]


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """Tiny models gain nothing from intra-op threads, and on a shared 2-core machine thread
    hand-offs dominate each small op; restored afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.slow
# Dynamo itself instantiates autograd.Function classes while tracing and warns about it (torch 2.13).
@pytest.mark.filterwarnings("ignore:.*should not be instantiated:DeprecationWarning")
def test_compiled_training_step_matches_eager() -> None:
    torch.manual_seed(0)
    model = Stack(StackConfig(vocab_size=11, block_size=4, n_embd=8, n_head=2, layers=LAYERS))
    compiled = torch.compile(model, backend="aot_eager", fullgraph=True)
    x = torch.randint(0, 11, (2, 4), generator=torch.Generator().manual_seed(1))
    results = []
    model.eval()  # dropout off, so both runs compute the same function
    for module in (model, compiled):
        model.zero_grad()
        _, loss, _ = module(x, x)
        loss.backward()
        results.append((loss.detach(), [p.grad.clone() for p in model.parameters()]))
    assert torch.allclose(results[0][0], results[1][0], atol=1e-6)
    for eager, traced in zip(results[0][1], results[1][1], strict=True):
        assert torch.allclose(eager, traced, atol=1e-5)
    model.train()  # dropout on: still one graph
    _, loss, _ = compiled(x, x)
    loss.backward()
    assert torch.isfinite(loss)
