"""Torch-free sampling of exported textgen models (numpy + onnxruntime + rich)."""
