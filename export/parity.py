"""Check an exported file against the torch model it came from."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from export.errors import ExportMismatchError
from textgen_core.models.gpt import GPT

FP32_TOLERANCE = 1e-4


@dataclass
class ParityReport:
    max_abs_diff_no_past: float
    max_abs_diff_with_past: float
    max_abs_diff_batch: float

    @property
    def worst(self) -> float:
        return max(self.max_abs_diff_no_past, self.max_abs_diff_with_past, self.max_abs_diff_batch)


def open_session(path: str | Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def run_onnx(session: ort.InferenceSession, ids: np.ndarray, past: list[np.ndarray] | None,
             n_layer: int, n_head: int, head_size: int) -> tuple[np.ndarray, list[np.ndarray]]:
    if past is None:
        past = [np.zeros((ids.shape[0], n_head, 0, head_size), np.float32)] * (2 * n_layer)
    feed = {"input_ids": ids.astype(np.int64)}
    for i in range(n_layer):
        feed[f"past_key_values.{i}.key"] = past[2 * i]
        feed[f"past_key_values.{i}.value"] = past[2 * i + 1]
    for arg in session.get_inputs():
        if arg.name == "yoke_state":  # a stateful yoke, read here as the first window (zero state)
            feed[arg.name] = np.zeros((ids.shape[0], arg.shape[1]), np.float32)
    outputs = session.run(None, feed)
    return outputs[0], outputs[1 : 1 + 2 * n_layer]


def onnx_parity(model: GPT, onnx_path: str | Path, seed: int = 0) -> ParityReport:
    """Max |Δlogits| between torch and onnxruntime: one uncached call, the same tokens split into
    two cached calls, and a batch of two rows split the same way."""
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
    first_b, past_b = run_onnx(session, ids[:, :split].numpy(), None, *shape)
    second_b, _ = run_onnx(session, ids[:, split:].numpy(), past_b, *shape)
    batch = np.concatenate([first_b, second_b], axis=1)
    return ParityReport(
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
