"""The per-kind operator allow-lists cover what the exporter writes, for every kind and variant,
and every exported file carries a valid checksum."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch

import export.onnx_fusion
from export.gan import export_gan_onnx
from export.gpt import export_gpt_onnx
from export.quantize import quantize_int4, quantize_int8
from export.stack import export_stack_onnx
from runtime.errors import ModelFileError
from runtime.onnx_ops import ALLOWED_OPS, check_ops
from runtime.onnx_scan import check_structure, verify_checksum
from runtime.tokenizer import CharTokenizer
from runtime.word_tokenizer import WordTokenizer
from textgen_core.models.gan import GANConfig, Generator
from textgen_core.models.gpt import GPT, GPTConfig
from textgen_core.models.stack.model import Stack
from textgen_core.models.stack.spec import StackConfig

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_torch_thread")]

CHARS = CharTokenizer(list("abcdefgh\n "))
WORDS = WordTokenizer(["<end>", "<unk>", "a", "b", "c", "d"])
GPT_VARIANTS = {"learned": {"positions": "learned"}, "rotary": {"positions": "rotary"},
                "bias-yoke": {"positions": "learned", "bias": True, "yoke": "1:8:no-residual"},
                "stateful": {"yoke": "0:8:stateful"}}
GAN_VARIANTS = {"default": {}, "noise-1d": {"noise_1d": True}, "argmax": {"token_choice": "argmax"},
                "uniform": {"noise_dist": "uniform"},
                "deep": {"n_mapping": 3, "n_noise_blocks": 2, "n_output_blocks": 2,
                         "noise_dist": "truncated"}}
# every layer type, in windowed stacks with a dynamic sequence axis (no RNN) and a fixed one
# (with an LSTM), and in a stepped one (RNN, LSTM)
STACK_VARIANTS = {
    "transformer": [{"type": "Embedding"}, {"type": "PositionalEmbedding"}, {"type": "Block"},
                    {"type": "LayerNorm"}, {"type": "TemporalDense"}, {"type": "CrossEntropyLoss"}],
    "windowed": [{"type": "Embedding"}, {"type": "PositionalEmbedding"}, {"type": "Block"},
                 {"type": "MultiHeadSelfAttention"}, {"type": "LayerNorm"}, {"type": "LSTM"},
                 {"type": "Dropout", "p": 0.1}, {"type": "TemporalDense"},
                 {"type": "CrossEntropyLoss"}],
    "stepped": [{"type": "Embedding"}, {"type": "RNN"}, {"type": "LSTM"}, {"type": "TemporalDense"},
                {"type": "CrossEntropyLoss"}],
}


def _gpt(name: str) -> GPT:
    torch.manual_seed(0)
    return GPT(GPTConfig(vocab_size=CHARS.vocab_size, block_size=8, n_layer=2, n_head=2, n_embd=16,
                         **GPT_VARIANTS[name])).eval()


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, Path]]:
    """(kind, file) for tiny exports of every variant: fused, unfused (the fusion's fallback)
    int8 and int4 GPTs, the GAN's noise and token choices, stacks of every layer type."""
    folder = tmp_path_factory.mktemp("variants")
    files = []
    for name in GPT_VARIANTS:
        fused = export_gpt_onnx(_gpt(name), CHARS, folder / f"{name}.onnx")
        files += [("gpt", fused), ("gpt", quantize_int8(fused, folder / f"{name}.int8.onnx")),
                  ("gpt", quantize_int4(fused, folder / f"{name}.int4.onnx"))]
    with pytest.MonkeyPatch.context() as patch, warnings.catch_warnings():
        # the exporter keeps the plain graph when a fusion does not match: that graph too
        warnings.simplefilter("ignore", RuntimeWarning)

        def no_match(*args: object, **kwargs: object) -> None:
            raise ValueError("no pattern matched")

        patch.setattr(export.onnx_fusion, "_rewrite", no_match)
        for name in GPT_VARIANTS:
            plain = export_gpt_onnx(_gpt(name), CHARS, folder / f"{name}.plain.onnx")
            files += [("gpt", plain), ("gpt", quantize_int8(plain, folder / f"{name}.plain.int8.onnx")),
                      ("gpt", quantize_int4(plain, folder / f"{name}.plain.int4.onnx"))]
    for name, options in GAN_VARIANTS.items():
        torch.manual_seed(0)
        generator = Generator(GANConfig(vocab_size=WORDS.vocab_size, seq_len=4, n_embd=8, n_head=2,
                                        ffn_hidden=16, **{"n_mapping": 1, "n_noise_blocks": 1,
                                                          "n_output_blocks": 1, **options}))
        files.append(("gan", export_gan_onnx(generator, WORDS, folder / f"gan-{name}.onnx")))
    for name, layers in STACK_VARIANTS.items():
        torch.manual_seed(0)
        stack = Stack(StackConfig(vocab_size=CHARS.vocab_size, block_size=6, n_embd=8, n_head=2,
                                  layers=layers)).eval()
        files.append(("stack", export_stack_onnx(stack, CHARS, folder / f"stack-{name}.onnx")))
    return files


def test_allow_lists_cover_every_exported_variant(exported: list[tuple[str, Path]]) -> None:
    used: dict[str, set[tuple[str, str]]] = {kind: set() for kind in ALLOWED_OPS}
    for kind, path in exported:
        scan = check_structure(path.read_bytes())
        check_ops(scan.ops, kind)
        used[kind] |= scan.ops
    assert ("com.microsoft", "GroupQueryAttention") in used["gpt"]  # the fused graphs were there
    assert ("", "MatMulInteger") in used["gpt"] and ("", "Softmax") in used["gpt"]  # int8, plain
    assert ("com.microsoft", "MatMulNBits") in used["gpt"]  # int4
    for kind, ops in used.items():  # each kind's list is what its exporter writes, no more
        assert {op for d, op in ALLOWED_OPS[kind]} == {op for d, op in ops}, kind


def test_every_export_stamps_its_checksum(exported: list[tuple[str, Path]]) -> None:
    for _, path in exported:
        data = path.read_bytes()
        verify_checksum(data, check_structure(data))


def test_operators_outside_the_kind_are_refused() -> None:
    for op in ("Loop", "If", "Scan"):
        for kind in ALLOWED_OPS:
            with pytest.raises(ModelFileError, match=f"operator.*{op}.*never writes for a {kind}"):
                check_ops({("", "Add"), ("", op)}, kind)
    with pytest.raises(ModelFileError, match="ConstantOfShape"):
        check_ops({("", "ConstantOfShape")}, "gpt")
