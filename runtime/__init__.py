"""Torch-free sampling of exported textgen models (numpy + onnxruntime + rich).

    import runtime
    gen = runtime.load("models/gpt.onnx")
    for piece in gen.generate("ROMEO:", max_new_tokens=200, temperature=0.8, seed=1):
        print(piece, end="")
"""

from __future__ import annotations

from pathlib import Path

from runtime.generator import TextGenerator


def load(path: str | Path, threads: int | None = None) -> TextGenerator:
    """Open and check an exported ONNX model (see runtime/model_file.py for the checks)."""
    return TextGenerator(path, threads=threads)


__all__ = ["TextGenerator", "load"]
