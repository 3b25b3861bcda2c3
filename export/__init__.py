"""Turn textgen checkpoints into portable ONNX and TorchScript files."""

import importlib.util

# The base install is the torch-free runtime; training and export are the `train` extra.
if importlib.util.find_spec("torch") is None:
    raise SystemExit("error: export needs PyTorch, which this install lacks: pip install "
                     "torch==2.13.0 && pip install \".[train]\" (the runtime alone needs neither: "
                     "python -m runtime.chat, python -m runtime.serve)")
