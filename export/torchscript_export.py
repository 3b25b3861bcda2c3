"""GPT → TorchScript: `forward(input_ids [b, s]) -> logits [b, s, V]` for any 1 <= s <= block_size;
a stateful yoke model: `forward(input_ids, yoke_state [b, H]) -> (logits, yoke_state_out [b, s, H])`.

TorchScript files can run arbitrary code when loaded, so the runtime only opens them with an
explicit trust flag; the tokenizer and config ride along as `_extra_files`.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

from export.torchscript_file import extra_files, load_traced, save_traced
from runtime.tokenizer import CharTokenizer
from textgen_core.models.gpt import GPT


class _LogitsOnly(nn.Module):
    def __init__(self, model: GPT) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: Tensor) -> Tensor:
        return self.model(input_ids)[0]


class _StatefulLogits(nn.Module):
    def __init__(self, model: GPT) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: Tensor, yoke_state: Tensor) -> tuple[Tensor, Tensor]:
        logits, _, _, hidden = self.model.forward_stateful(input_ids, yoke_state)
        return logits, hidden


def export_gpt_torchscript(model: GPT, tokenizer: CharTokenizer, path: str | Path) -> Path:
    path = Path(path)
    model = model.float().eval().cpu()
    example = torch.zeros((1, min(8, model.config.block_size)), dtype=torch.long)
    state_size = model.config.yoke_state_size
    wrapper: nn.Module = _StatefulLogits(model) if state_size else _LogitsOnly(model)
    inputs = (example, torch.zeros((1, state_size))) if state_size else example
    extra = extra_files("gpt", tokenizer.to_dict(), model.config.to_dict())
    return save_traced(wrapper, inputs, path, extra)


def torchscript_parity(model: GPT, ts_path: str | Path, seed: int = 0) -> float:
    """Max |Δlogits| between the file and the torch model at two sequence lengths."""
    c = model.config
    loaded = load_traced(ts_path)
    worst = 0.0
    generator = torch.Generator().manual_seed(seed)
    for length in sorted({1, min(c.block_size, 19), c.block_size}):
        ids = torch.randint(0, c.vocab_size, (2, length), generator=generator)
        with torch.inference_mode():
            if c.yoke_state_size:  # compare logits and state rows, with a nonzero state
                state = torch.randn((2, c.yoke_state_size), generator=generator)
                logits, _, _, hidden = model.forward_stateful(ids, state)
                expected = torch.cat([logits, hidden], dim=-1)
                got = torch.cat(loaded(ids, state), dim=-1)
            else:
                expected = model(ids)[0]
                got = loaded(ids)
        worst = max(worst, float((got - expected).abs().max()))
    return worst
