"""Torch-free sampling of exported textgen models (numpy + onnxruntime + rich).

    import runtime
    gen = runtime.load("models/gpt.onnx")
    for piece in gen.generate("ROMEO:", max_new_tokens=200, temperature=0.8, seed=1):
        print(piece, end="")
"""

from __future__ import annotations

from pathlib import Path

from runtime.gan import GANSampler
from runtime.gpt import TextGenerator
from runtime.onnx_file import model_kind
from runtime.stack import StackGenerator


def load(path: str | Path, threads: int | None = None, spin: bool | None = None
         ) -> TextGenerator | GANSampler | StackGenerator:
    """Open and check an exported ONNX model (see runtime/onnx_file.py for the checks): a
    `TextGenerator` for a GPT, a `GANSampler` (`.sample(n, seed)`) for a GAN generator.
    `spin`: whether onnxruntime's workers spin between kernels (None: TEXTGEN_SPIN, else yes)."""
    kind = model_kind(path)
    if kind == "gan":
        return GANSampler(path, threads=threads, spin=spin)
    if kind == "stack":  # a layer stack (runtime/stack.py), same generate() API
        return StackGenerator(path, threads=threads, spin=spin)
    return TextGenerator(path, threads=threads, spin=spin)


__all__ = ["GANSampler", "StackGenerator", "TextGenerator", "load"]
