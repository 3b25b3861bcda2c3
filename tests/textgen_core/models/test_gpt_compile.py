"""torch.compile (used on CUDA/MPS) traces the rotary GPT, hand-written rotation backward
included, as one graph, and the compiled step computes the eager loss and gradients. The
aot_eager backend runs Dynamo + AOTAutograd as inductor would, without generating kernels."""

from __future__ import annotations

import pytest
import torch

from textgen_core.models.gpt import GPT, GPTConfig

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:.*should not be instantiated:DeprecationWarning")
def test_compiled_rotary_training_step_matches_eager() -> None:
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=11, block_size=8, n_layer=2, n_head=2, n_embd=16))
    compiled = torch.compile(model, backend="aot_eager", fullgraph=True)
    x, y = torch.randint(0, 11, (2, 2, 8), generator=torch.Generator().manual_seed(1))
    results = []
    for module in (model, compiled):
        model.zero_grad()
        _, loss, _ = module(x, y)
        loss.backward()
        results.append((loss.detach(), [p.grad.clone() for p in model.parameters()]))
    torch.testing.assert_close(results[1][0], results[0][0], atol=1e-6, rtol=0)
    for eager, traced in zip(results[0][1], results[1][1], strict=True):
        torch.testing.assert_close(traced, eager, atol=1e-5, rtol=1e-4)
