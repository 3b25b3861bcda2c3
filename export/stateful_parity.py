"""Parity of a stateful-yoke ONNX export: logits and state rows against torch, with a state.

`onnx_parity` (export/parity.py) already checks every export with a zero state; this adds a
nonzero state, read uncached and in two cached calls, on a batch of two rows, and compares the
exported `yoke_state_out` too, since the runtime carries those rows from window to window.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from export.parity import empty_past, onnx_feed, open_session
from runtime.contract import LOGITS, YOKE_STATE_OUT, present_name
from textgen_core.models.gpt import GPT


def _run(session, ids: np.ndarray, past: list[np.ndarray] | None, state: np.ndarray,
         model: GPT) -> tuple[np.ndarray, list[np.ndarray], np.ndarray]:
    c = model.config
    if past is None:
        past = empty_past(ids.shape[0], c.n_layer, c.n_head, c.head_size)
    outputs = session.run(None, onnx_feed(session, ids, past, state=state))
    names = [o.name for o in session.get_outputs()]
    rows = outputs[names.index(YOKE_STATE_OUT)]
    present = [outputs[names.index(present_name(i, p))] for i in range(c.n_layer)
               for p in ("key", "value")]
    return outputs[names.index(LOGITS)], present, rows


def stateful_onnx_parity(model: GPT, onnx_path: str | Path, seed: int = 0) -> float:
    """Max |Δ| over logits and state rows, uncached and split into two cached calls."""
    c = model.config
    generator = torch.Generator().manual_seed(seed)
    length = min(c.block_size, 24)
    ids = torch.randint(0, c.vocab_size, (2, length), generator=generator)
    state = torch.randn((2, c.yoke_state_size), generator=generator)
    with torch.inference_mode():
        logits, _, _, hidden = model.eval().forward_stateful(ids, state)
    expected = np.concatenate([logits.float().numpy(), hidden.float().numpy()], axis=-1)
    session = open_session(onnx_path)
    state_np = state.numpy()
    whole_logits, _, whole_rows = _run(session, ids.numpy(), None, state_np, model)
    split = max(1, length // 2)
    first_logits, past, first_rows = _run(session, ids[:, :split].numpy(), None, state_np, model)
    second_logits, _, second_rows = _run(session, ids[:, split:].numpy(), past, state_np, model)
    whole = np.concatenate([whole_logits, whole_rows], axis=-1)
    cached = np.concatenate([np.concatenate([first_logits, second_logits], axis=1),
                             np.concatenate([first_rows, second_rows], axis=1)], axis=-1)
    return float(max(np.abs(whole - expected).max(), np.abs(cached - expected).max()))
