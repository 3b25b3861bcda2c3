"""Sampling from a TorchScript export, only when the user trusts the file.

`torch.jit.load` executes code stored in the file, so a TorchScript model from a stranger can do
anything the user can. The chat imports this module only with `--trust-torchscript` (the gate is
runtime/torchscript_trust.py), which keeps torch out of the ONNX runtime. The file has no key/value
cache: each step recomputes the window (the decode loop's `past` is the list of ids already read).
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch

from export.torchscript_file import TORCHSCRIPT_FORMAT
from runtime.decode import decode
from runtime.errors import ModelFileError
from runtime.generator import start_ids
from runtime.sampler import SamplingSettings, validate_max_new_tokens
from runtime.tokenizer import tokenizer_from_dict
from runtime.torchscript_trust import require_trusted
from runtime.yoke_spec import parse_yoke
from runtime.yoke_state import StatefulPast, carrier, stateful_forward


class TorchScriptGenerator:
    def __init__(self, path: str | Path, trusted: bool = False) -> None:
        path = Path(path)
        require_trusted(path, trusted)
        files = {"textgen.json": "", "tokenizer.json": "", "model_config.json": ""}
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # torch.jit is deprecated in recent torch
                self.module = torch.jit.load(str(path), map_location="cpu", _extra_files=files)
            header = json.loads(files["textgen.json"] or "{}")
            self.tokenizer = tokenizer_from_dict(json.loads(files["tokenizer.json"] or "{}"))
            self.config = json.loads(files["model_config.json"] or "{}")
        except Exception as exc:  # torch.jit raises many types for foreign or damaged files
            first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
            raise ModelFileError(f"{path}: not a textgen TorchScript file ({first})") from None
        if header.get("format") != TORCHSCRIPT_FORMAT or header.get("kind") != "gpt":
            raise ModelFileError(f"{path}: not a textgen TorchScript GPT file")
        self.block_size = int(self.config["block_size"])
        self.vocab_size = self.tokenizer.vocab_size
        try:
            yoke = parse_yoke(self.config.get("yoke", ""), int(self.config["n_layer"]))
        except ValueError as exc:
            raise ModelFileError(f"{path}: its model config has an invalid yoke ({exc})") from None
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
        return (self.tokenizer.decode([t]) for t in tokens)
