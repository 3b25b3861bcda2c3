"""`python -m export genai`: onnxruntime-genai opens the folder as it is, decodes greedily exactly
as our runtime does on our ONNX file, and its tokenizer encodes and decodes as ours."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import runtime
from export.cli import export_checkpoint, main
from runtime.tokenizer import CharTokenizer, Tokenizer
from textgen_core.data.tokenizers import TokenizerSpec, build_tokenizer
from textgen_core.models.gpt import GPT, GPTConfig
from textgen_core.training.checkpoint import make_checkpoint, save_checkpoint

og = pytest.importorskip("onnxruntime_genai", reason="onnxruntime-genai is not installed "
                                                     "(pip install onnxruntime-genai)")

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# Characters of one, two, three and four UTF-8 bytes: the byte-level tokenizer's merges.
EXTRA = "café — naïve 🙂\n" * 4
HELD_OUT = "Whether to sleep, or to take the café — naïve 🙂 fortune.\nTo die"
NEW_TOKENS = 200
PROMPT = "To be"


def _checkpoint(folder: Path, text: str, positions: str) -> Path:
    """A GPT with room for the prompt and 200 new tokens (onnxruntime-genai stops at its
    context), briefly trained on `text`."""
    torch.manual_seed(0)
    tokenizer = CharTokenizer.from_text(text)
    data = torch.tensor(tokenizer.encode(text), dtype=torch.long)
    config = GPTConfig(vocab_size=tokenizer.vocab_size, block_size=256, n_layer=2, n_head=2,
                       n_embd=32, positions=positions)
    model = GPT(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(30):
        starts = torch.randint(0, len(data) - 33, (8,))
        x = torch.stack([data[s : s + 32] for s in starts])
        y = torch.stack([data[s + 1 : s + 33] for s in starts])
        _, loss, _ = model(x, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    path = folder / f"{positions}.pt"
    save_checkpoint(make_checkpoint(kind="gpt", model_config=config.to_dict(),
                                    tokenizer=tokenizer.to_dict(), model_state=model.state_dict(),
                                    train_state={"step": 30, "val_loss": float("nan")}), path)
    return path


@pytest.fixture(scope="module")
def rotary(tmp_path_factory: pytest.TempPathFactory, tiny_text: str) -> dict[str, Path]:
    """A rotary GPT exported for our runtime (fp32, int4) and as genai folders (fp32, int4)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        folder = tmp_path_factory.mktemp("genai")
        ckpt = _checkpoint(folder, tiny_text + EXTRA, "rotary")
        lines: list[str] = []
        onnx, int4 = export_checkpoint(str(ckpt), "onnx", quantize="int4", report=lines.append)
        genai = export_checkpoint(str(ckpt), "genai", report=lines.append)[0].parent
        genai_int4 = export_checkpoint(str(ckpt), "genai", out=str(folder / "int4-genai"),
                                       quantize="int4", report=lines.append)[0].parent
    finally:
        torch.set_num_threads(before)
    return {"checkpoint": ckpt, "onnx": onnx, "int4": int4, "genai": genai,
            "genai_int4": genai_int4, "report": "\n".join(lines)}


def _genai_greedy(folder: Path, prompt: list[int], new_tokens: int) -> list[int]:
    model = og.Model(str(folder))
    params = og.GeneratorParams(model)
    params.set_search_options(max_length=len(prompt) + new_tokens, do_sample=False)
    generator = og.Generator(model, params)
    generator.append_tokens(prompt)
    while not generator.is_done():
        generator.generate_next_token()
    return [int(t) for t in generator.get_sequence(0)[len(prompt):]]


def _our_greedy(path: Path, new_tokens: int) -> tuple[list[int], list[int]]:
    generator = runtime.load(path, threads=1)
    tokenizer = generator.tokenizer
    pieces = list(generator.generate(PROMPT, max_new_tokens=new_tokens, temperature=0))
    return tokenizer.encode(PROMPT), tokenizer.encode("".join(pieces))


def test_folder_holds_the_genai_files(rotary: dict[str, Path]) -> None:
    names = {p.name for p in rotary["genai"].iterdir()}
    assert names == {"model.onnx", "genai_config.json", "tokenizer.json", "tokenizer_config.json"}
    config = json.loads((rotary["genai"] / "genai_config.json").read_text(encoding="utf-8"))
    assert config["search"]["past_present_share_buffer"] is True  # GroupQueryAttention in place
    assert rotary["checkpoint"].with_name("rotary-genai") == rotary["genai"]  # the default name


def test_genai_greedy_decoding_matches_our_runtime(rotary: dict[str, Path]) -> None:
    prompt, ours = _our_greedy(rotary["onnx"], NEW_TOKENS)
    assert len(ours) == NEW_TOKENS
    assert _genai_greedy(rotary["genai"], prompt, NEW_TOKENS) == ours


def test_genai_int4_greedy_decoding_matches_our_runtime_int4(rotary: dict[str, Path]) -> None:
    prompt, ours = _our_greedy(rotary["int4"], NEW_TOKENS)
    assert _genai_greedy(rotary["genai_int4"], prompt, NEW_TOKENS) == ours


def test_export_reports_the_int4_cost(rotary: dict[str, Path]) -> None:
    report = rotary["report"]
    assert "int4.onnx" in report and "-> int4" in report and "top-1 agreement" in report


def test_genai_tokenizer_encodes_and_decodes_as_ours(rotary: dict[str, Path]) -> None:
    ours = runtime.load(rotary["onnx"], threads=1).tokenizer
    theirs = og.Tokenizer(og.Model(str(rotary["genai"])))
    ids = ours.encode(HELD_OUT)
    assert [int(i) for i in theirs.encode(HELD_OUT)] == ids
    assert theirs.decode(ids) == HELD_OUT == ours.decode(ids)


def _untrained_checkpoint(folder: Path, tokenizer: Tokenizer) -> Path:
    torch.manual_seed(0)
    config = GPTConfig(vocab_size=tokenizer.vocab_size, block_size=16, n_layer=1, n_head=2,
                       n_embd=16)
    path = folder / "untrained.pt"
    save_checkpoint(make_checkpoint(kind="gpt", model_config=config.to_dict(),
                                    tokenizer=tokenizer.to_dict(),
                                    model_state=GPT(config).state_dict(),
                                    train_state={"step": 0, "val_loss": float("nan")}), path)
    return path


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["bpe", "char-unk"])
def test_genai_tokenizer_of_other_kinds(kind: str, tmp_path: Path, tiny_text: str) -> None:
    """A byte-level BPE goes over as trained, every text included; a char vocabulary with <unk>
    decodes it as ours (U+FFFD); an unknown character onnxruntime-genai encodes as -1."""
    if kind == "bpe":
        tokenizer = build_tokenizer(TokenizerSpec("bpe", 300), [tiny_text])
        text = HELD_OUT + " Zebra 0123 «quotes»"
    else:
        tokenizer = CharTokenizer(sorted(set(tiny_text + EXTRA)), unk=True)
        text = HELD_OUT
    ckpt = _untrained_checkpoint(tmp_path, tokenizer)
    folder = export_checkpoint(str(ckpt), "genai", report=lambda line: None)[0].parent
    theirs = og.Tokenizer(og.Model(str(folder)))
    ids = tokenizer.encode(text)
    assert [int(i) for i in theirs.encode(text)] == ids
    assert theirs.decode(ids) == tokenizer.decode(ids) == text
    if kind == "char-unk":
        unk = tokenizer.encode("Z")  # no Z in the corpus
        assert theirs.decode(unk) == tokenizer.decode(unk) == "\ufffd"
        assert [int(i) for i in theirs.encode("Z")] == [-1]


@pytest.mark.slow
def test_learned_positions_decode_the_same_with_a_growing_cache(
        tmp_path: Path, tiny_text: str) -> None:
    ckpt = _checkpoint(tmp_path, tiny_text, "learned")
    (onnx,) = export_checkpoint(str(ckpt), "onnx", report=lambda line: None)
    genai = export_checkpoint(str(ckpt), "genai", report=lambda line: None)[0].parent
    config = json.loads((genai / "genai_config.json").read_text(encoding="utf-8"))
    assert config["search"]["past_present_share_buffer"] is False
    prompt, ours = _our_greedy(onnx, NEW_TOKENS)
    assert _genai_greedy(genai, prompt, NEW_TOKENS) == ours


def test_a_stateful_yoke_is_refused_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                                ) -> None:
    tokenizer = CharTokenizer(list("ab\n "))
    config = GPTConfig(vocab_size=4, block_size=8, n_layer=2, n_head=2, n_embd=16,
                       yoke="0:8:stateful")
    path = tmp_path / "yoke.pt"
    save_checkpoint(make_checkpoint(kind="gpt", model_config=config.to_dict(),
                                    tokenizer=tokenizer.to_dict(),
                                    model_state=GPT(config).state_dict(),
                                    train_state={"step": 0, "val_loss": float("nan")}), path)
    assert main(["genai", str(path)]) == 1
    err = capsys.readouterr().err.strip()
    assert "onnxruntime-genai cannot feed" in err and "\n" not in err
    assert not (tmp_path / "yoke-genai").exists()


def test_a_char_model_decodes_through_newlines_as_our_runtime(tmp_path: Path) -> None:
    """Id 0 of a char vocabulary is the newline: onnxruntime-genai must not end a sequence at
    it (its end and pad id is the extra, never-chosen logit), and matches us for 100 tokens."""
    text = "to be or not\nto be\nthat is\n" * 40
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        ckpt = _checkpoint(tmp_path, text, "rotary")
        onnx_path = export_checkpoint(str(ckpt), "onnx", report=lambda line: None)[0]
        folder = export_checkpoint(str(ckpt), "genai", report=lambda line: None)[0].parent
    finally:
        torch.set_num_threads(before)
    config = json.loads((folder / "genai_config.json").read_text(encoding="utf-8"))
    vocab = CharTokenizer.from_text(text).vocab_size
    assert config["model"]["pad_token_id"] == config["model"]["eos_token_id"] == vocab
    generator = runtime.load(onnx_path, threads=1)
    prompt = generator.tokenizer.encode("to be")
    ours = generator.tokenizer.encode("".join(generator.generate("to be", max_new_tokens=100,
                                                                 temperature=0)))
    assert generator.tokenizer.encode("\n")[0] in ours  # the test decodes through newlines
    assert _genai_greedy(folder, prompt, 100) == ours
