"""Layer stack → TorchScript, with the ONNX file's interface:
`forward(input_ids, *state) -> (logits, *next_state)` (runtime/stack_layout.py names and orders
the state; a stack without RNN/LSTM layers takes and returns none, and its sequence axis is
dynamic). Like every TorchScript file it runs code when loaded: for PyTorch deployments that
trust it; the runtime never opens one.
"""

from __future__ import annotations

from pathlib import Path

import torch

from export.stack_onnx import _example_state, _FlatStateStack
from export.torchscript_file import extra_files, load_traced, save_traced
from runtime.stack_layout import graph_sequence_length
from runtime.tokenizer import CharTokenizer
from textgen_core.models.stack.model import Stack


class _Positional(torch.nn.Module):
    """`_FlatStateStack` with the state as separate positional arguments (what tracing wants)."""

    def __init__(self, model: Stack) -> None:
        super().__init__()
        self.flat = _FlatStateStack(model)

    def forward(self, input_ids: torch.Tensor, *state: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return self.flat(input_ids, tuple(state))


def export_stack_torchscript(model: Stack, tokenizer: CharTokenizer, path: str | Path) -> Path:
    path = Path(path)
    model = model.float().eval().cpu()
    c = model.config
    length = graph_sequence_length(c.layers, c.block_size) or min(8, c.block_size)
    example = (torch.zeros((1, length), dtype=torch.long), *_example_state(model, 1))
    return save_traced(_Positional(model), example, path,
                       extra_files("stack", tokenizer.to_dict(), c.to_dict()))


def stack_torchscript_parity(model: Stack, ts_path: str | Path, seed: int = 0) -> float:
    """Max |Δlogits| between the file and the torch stack on a batch of two."""
    c = model.config
    loaded = load_traced(ts_path)
    static = graph_sequence_length(c.layers, c.block_size)
    lengths = [static] if static else sorted({1, min(c.block_size, 19), c.block_size})
    generator = torch.Generator().manual_seed(seed)
    worst = 0.0
    for length in lengths:
        ids = torch.randint(0, c.vocab_size, (2, length), generator=generator)
        with torch.inference_mode():
            expected = model.eval()(ids)[0]
            got = loaded(ids, *_example_state(model, 2))[0]
        worst = max(worst, float((got - expected).abs().max()))
    return worst
