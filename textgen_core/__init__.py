"""Training side of textgen: corpora, tokenizers, models and the training loop (PyTorch)."""
