"""Turn textgen checkpoints into portable ONNX and TorchScript files."""
