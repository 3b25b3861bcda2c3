"""Training side of textgen: corpora, tokenizers, models and the training loop (PyTorch)."""

import importlib.util

# The base install is the torch-free runtime; training and export are the `train` extra.
if importlib.util.find_spec("torch") is None:
    raise SystemExit("error: training needs PyTorch, which this install lacks: pip install "
                     "torch==2.13.0 && pip install \".[train]\" (the runtime alone needs neither: "
                     "python -m runtime.chat, python -m runtime.serve)")
