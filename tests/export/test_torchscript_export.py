import json
from pathlib import Path

import pytest
import torch

from export.gpt import torchscript_parity
from textgen_core.models.gpt import gpt_from_checkpoint
from textgen_core.training.checkpoint import load_checkpoint


# TorchScript is deprecated in this torch release; the file format is still what users ask for.
@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:DeprecationWarning")
def test_torchscript_parity_at_several_lengths_and_extra_files(exported_tiny: dict[str, Path]) -> None:
    model, tokenizer = gpt_from_checkpoint(load_checkpoint(exported_tiny["checkpoint"]))
    assert torchscript_parity(model, exported_tiny["torchscript"], seed=5) < 1e-4
    files = {"textgen.json": "", "tokenizer.json": "", "model_config.json": ""}
    torch.jit.load(str(exported_tiny["torchscript"]), _extra_files=files)
    assert json.loads(files["textgen.json"])["kind"] == "gpt"
    assert json.loads(files["tokenizer.json"]) == tokenizer.to_dict()
