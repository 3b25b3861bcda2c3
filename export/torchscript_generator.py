"""Sampling from a TorchScript export, only when the user trusts the file.

`torch.jit.load` executes code stored in the file, so a TorchScript model from a stranger can do
anything the user can. The chat imports this module only with `--trust-torchscript` (the gate is
runtime/torchscript_trust.py), which keeps torch out of the ONNX runtime.

`open_torchscript` opens a file of any kind `python -m export torchscript` writes, with the API of
the ONNX runtime's object for that kind: this module's `TorchScriptGenerator` for a GPT, the
runtime's `StackGenerator` around the TorchScript stack (export/stack.py), and
`TorchScriptGAN` (export/gan.py). Each samples through the ONNX runtime's decoding
loop and sampler, or draws the GAN's noise with its code, so the same seed gives the same text.

A GPT file has no key/value cache: each step recomputes the window (the decode loop's `past` is
the list of ids already read).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch

from export.gan import TorchScriptGAN
from export.stack import torchscript_stack_generator
from export.torchscript_file import KINDS, TorchScriptFile, read_torchscript
from runtime.decode import decode
from runtime.errors import ModelFileError
from runtime.model_limits import bounded_size
from runtime.sampler import SamplingSettings, validate_max_new_tokens
from runtime.stack import StackGenerator
from runtime.tokenizer import start_ids
from runtime.yoke_spec import parse_yoke
from runtime.yoke_state import StatefulPast, carrier, stateful_forward


def open_torchscript(path: str | Path, trusted: bool, kinds: tuple[str, ...] = KINDS
                     ) -> TorchScriptGenerator | StackGenerator | TorchScriptGAN:
    """The sampler for a trusted TorchScript file of one of `kinds`, chosen by its header."""
    loaded = read_torchscript(path, trusted, kinds)
    if loaded.kind == "gan":
        return TorchScriptGAN(loaded)
    if loaded.kind == "stack":
        return torchscript_stack_generator(loaded)
    return TorchScriptGenerator(loaded)


class TorchScriptGenerator:
    """`generate(prompt, ...)` for a GPT TorchScript file, with `TextGenerator`'s API."""

    def __init__(self, path: str | Path | TorchScriptFile, trusted: bool = False) -> None:
        loaded = path if isinstance(path, TorchScriptFile) else read_torchscript(path, trusted, ("gpt",))
        self.module = loaded.module
        self.tokenizer = loaded.tokenizer
        self.config = loaded.config
        self.block_size = bounded_size(loaded.path, self.config, "block_size")
        n_layer = bounded_size(loaded.path, self.config, "n_layer")
        self.vocab_size = self.tokenizer.vocab_size
        try:
            yoke = parse_yoke(self.config.get("yoke", ""), n_layer)
        except ValueError as exc:
            raise ModelFileError(f"{loaded.path}: its model config has an invalid yoke ({exc})") from None
        # A stateful yoke file takes (input_ids, yoke_state) and returns (logits, yoke_state_out).
        self.state_size = yoke.hidden if yoke is not None and yoke.stateful else 0

    def _forward(self, ids: Sequence[int], past: list[int]) -> tuple[np.ndarray, list[int]]:
        window = list(past) + list(ids)
        with torch.inference_mode():
            logits = self.module(torch.tensor([window], dtype=torch.long))
        return logits[0, -1].float().numpy(), window

    def _forward_stateful(self, ids: Sequence[int], past: list[int], state: object
                          ) -> tuple[np.ndarray, list[int], object]:
        window = list(past) + list(ids)
        with torch.inference_mode():
            logits, rows = self.module(torch.tensor([window], dtype=torch.long), state)
        return logits[0, -1].float().numpy(), window, rows[:, -len(ids):]

    def generate(self, prompt: str, max_new_tokens: int = 200, temperature: float = 0.8,
                 top_k: int | None = None, top_p: float | None = None,
                 repetition_penalty: float = 1.0, seed: int | None = None) -> Iterator[str]:
        settings = SamplingSettings(temperature, top_k, top_p, repetition_penalty)
        validate_max_new_tokens(max_new_tokens)
        ids = start_ids(self.tokenizer, prompt)
        if self.state_size:
            def empty() -> StatefulPast:
                return StatefulPast([], torch.zeros(1, self.state_size))

            tokens = decode(ids, block_size=self.block_size,
                            forward=stateful_forward(self._forward_stateful), empty_past=empty,
                            settings=settings, max_new_tokens=max_new_tokens, seed=seed,
                            carry=carrier(list))
        else:
            tokens = decode(ids, block_size=self.block_size, forward=self._forward,
                            empty_past=list, settings=settings, max_new_tokens=max_new_tokens,
                            seed=seed)
        return map(self.tokenizer.piece_decoder(), tokens)
