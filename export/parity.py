"""Check an exported file against the torch model it came from."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from export.errors import ExportMismatchError
from runtime.contract import INPUT_IDS, POSITION_IDS, SEQLENS_K, YOKE_STATE, past_name
from runtime.gpt import attention_lengths, position_ids
from runtime.window import roll_limit
from textgen_core.models.gpt import GPT

FP32_TOLERANCE = 1e-4


@dataclass
class ParityReport:
    max_abs_diff_no_past: float
    max_abs_diff_with_past: float
    max_abs_diff_batch: float
    max_abs_diff_far_positions: float = 0.0  # rotary: positions as after many rolls

    @property
    def worst(self) -> float:
        return max(self.max_abs_diff_no_past, self.max_abs_diff_with_past, self.max_abs_diff_batch,
                   self.max_abs_diff_far_positions)


def open_session(path: str | Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def onnx_feed(session: ort.InferenceSession, ids: np.ndarray, past: list[np.ndarray],
              position: int | None = None, state: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """The inputs of one call: ids, the flat cache, and what the graph also takes: a rotary
    model's position_ids (from `position`, by default right after the past), the cache lengths
    of a GroupQueryAttention graph, and a stateful yoke's state (`state`, by default zero: a
    first window)."""
    feed = {INPUT_IDS: ids.astype(np.int64)}
    for i in range(len(past) // 2):
        feed[past_name(i, "key")] = past[2 * i]
        feed[past_name(i, "value")] = past[2 * i + 1]
    for arg in session.get_inputs():
        if arg.name == YOKE_STATE:
            feed[arg.name] = (np.zeros((ids.shape[0], arg.shape[1]), np.float32) if state is None
                              else state)
        elif arg.name == POSITION_IDS:
            start = past[0].shape[2] if position is None else position
            feed[arg.name] = position_ids(start, *ids.shape)
        elif arg.name == SEQLENS_K:  # GroupQueryAttention: the whole past is valid
            feed.update(attention_lengths(past[0].shape[2], *ids.shape))
    return feed


def empty_past(batch: int, n_layer: int, n_head: int, head_size: int) -> list[np.ndarray]:
    return [np.zeros((batch, n_head, 0, head_size), np.float32)] * (2 * n_layer)


def run_onnx(session: ort.InferenceSession, ids: np.ndarray, past: list[np.ndarray] | None,
             n_layer: int, n_head: int, head_size: int, position: int | None = None
             ) -> tuple[np.ndarray, list[np.ndarray]]:
    """Logits and cache of one call (see `onnx_feed`)."""
    if past is None:
        past = empty_past(ids.shape[0], n_layer, n_head, head_size)
    outputs = session.run(None, onnx_feed(session, ids, past, position))
    return outputs[0], outputs[1 : 1 + 2 * n_layer]


def onnx_parity(model: GPT, onnx_path: str | Path, seed: int = 0) -> ParityReport:
    """Max |Δlogits| between torch and onnxruntime: one uncached call, the same tokens split into
    two cached calls, and a batch of two rows, its first half in one call and the rest one token
    per call."""
    c = model.config
    length = min(c.block_size, 24)
    ids = torch.randint(0, c.vocab_size, (2, length), generator=torch.Generator().manual_seed(seed))
    with torch.inference_mode():
        expected = model.eval()(ids)[0].float().numpy()
    session = open_session(onnx_path)
    shape = (c.n_layer, c.n_head, c.head_size)
    whole, _ = run_onnx(session, ids[:1].numpy(), None, *shape)
    split = max(1, length // 2)
    first, past = run_onnx(session, ids[:1, :split].numpy(), None, *shape)
    second, _ = run_onnx(session, ids[:1, split:].numpy(), past, *shape)
    cached = np.concatenate([first, second], axis=1)
    # The batch's second part one token per call: GroupQueryAttention files read several new
    # tokens after a past only at batch 1 (onnxruntime's CPU kernel), and a sampler does this.
    logits_b, past_b = run_onnx(session, ids[:, :split].numpy(), None, *shape)
    steps = [logits_b]
    for t in range(split, length):
        logits_b, past_b = run_onnx(session, ids[:, t:t + 1].numpy(), past_b, *shape)
        steps.append(logits_b)
    batch = np.concatenate(steps, axis=1)
    far = 0.0
    if c.rotary:  # where a rolled cache reads: far beyond the window, as the runtime counts
        start = roll_limit(c.block_size)
        with torch.inference_mode():
            shifted = model(ids[:1], positions=torch.arange(length) + start)[0].float().numpy()
        got, _ = run_onnx(session, ids[:1].numpy(), None, *shape, position=start)
        far = float(np.abs(got - shifted).max())
    return ParityReport(
        max_abs_diff_far_positions=far,
        max_abs_diff_no_past=float(np.abs(whole - expected[:1]).max()),
        max_abs_diff_with_past=float(np.abs(cached - expected[:1]).max()),
        max_abs_diff_batch=float(np.abs(batch - expected).max()),
    )


def require_parity(worst: float, path: Path, tolerance: float = FP32_TOLERANCE) -> None:
    if not worst <= tolerance:  # also catches NaN
        raise ExportMismatchError(
            f"{path.name} disagrees with the torch model: max |Δlogits| {worst:.3g} exceeds "
            f"{tolerance:.0e}; the file was not written"
        )
