"""An exported GPT as an onnxruntime-genai model folder: model.onnx, genai_config.json and a
Hugging Face tokenizer.json (+ tokenizer_config.json), opened by `og.Model(folder)` as it is.

The graph is our ONNX export (export/gpt.py, fused by export/onnx_fusion.py) with one
interface change. onnxruntime-genai feeds `attention_mask` [b, total] int64 where our runtime
feeds GroupQueryAttention's `seqlens_k` and `total_sequence_length` directly; here the two
become nodes computed from the mask inside the graph (row sums minus one, and its width), as
onnxruntime-genai's own model builder writes them. Every other node, weight and name is the
file our runtime reads, so both decode the same graph; our runtime keeps its own interface
because its cache rolls past the context (runtime/window.py), which a mask of the whole
sequence cannot express, and it saves the two small nodes per token. A learned-position
graph (MultiHeadAttention, a growing cache) takes the mask and does not need it: batch 1, no
padding. A stateful yoke has an input onnxruntime-genai cannot feed and is refused.

The tokenizer: a `bpe` tokenizer is already a byte-level BPE tokenizer.json and goes over as it
is. A `word` vocabulary is refused: onnxruntime-genai's tokenizer reads BPE and SentencePiece
files, and a word list with our splitting rules is neither. A `char` vocabulary is written as a
byte-level BPE (GPT-2's format, which
onnxruntime-genai's tokenizer reads best): a character is the bytes of its UTF-8 spelling, and
the merges join those bytes back into that one character and never across two, so every text
encodes to exactly our ids. A multi-byte character needs its byte prefixes as tokens too; they
take ids after the model's vocabulary, which the model never produces. An end-of-text token
follows them for the tokenizer's config; our models have none, so genai_config.json names no
end-of-text id and a sample ends at its length.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import onnx
from onnx import helper

from export.errors import ExportError
from export.onnx_file import save_with_checksum
from runtime.atomic_file import describe_os_error, write_atomic
from runtime.bpe_tokenizer import BPETokenizer
from runtime.contract import INPUT_IDS, LENGTH_INPUTS, LOGITS, PAST_FORMAT, POSITION_IDS, PRESENT_FORMAT
from runtime.tokenizer import UNK_TEXT, CharTokenizer, Tokenizer
from textgen_core.models.gpt import GPTConfig

MODEL_FILE = "model.onnx"
CONFIG_FILE = "genai_config.json"
TOKENIZER_FILE = "tokenizer.json"
TOKENIZER_CONFIG_FILE = "tokenizer_config.json"
END_OF_TEXT = "<|endoftext|>"
MASK = "attention_mask"


def byte_alphabet() -> dict[int, str]:
    """GPT-2's printable stand-in for every byte: printable Latin-1 bytes stand for themselves,
    the rest map to code points from 256 up in byte order. This is the published table every
    byte-level BPE reader decodes with."""
    kept = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1),
            *range(ord("®"), ord("ÿ") + 1)]
    table, extra = {}, 0
    for byte in range(256):
        if byte in kept:
            table[byte] = chr(byte)
        else:
            table[byte] = chr(256 + extra)
            extra += 1
    return table


def char_tokenizer_json(tokenizer: CharTokenizer) -> dict:
    """tokenizer.json's content for `tokenizer`: token i is tokenizer.chars[i]."""
    alphabet = byte_alphabet()

    def spell(text: str) -> str:
        return "".join(alphabet[b] for b in text.encode("utf-8"))

    vocab = {spell(c): i for i, c in enumerate(tokenizer.chars)}
    unk = None
    if tokenizer.unk_id is not None and spell(UNK_TEXT) not in vocab:
        # Our <unk> decodes as U+FFFD; spelled so, theirs does too. onnxruntime-genai's
        # tokenizer encodes an unknown character as -1 (no id), not as it (see the README).
        unk = spell(UNK_TEXT)
        vocab[unk] = tokenizer.unk_id
    next_id = tokenizer.vocab_size  # byte prefixes take ids the model never produces
    merges: list[str] = []
    for c in tokenizer.chars:
        spelled = spell(c)
        # every merge starts from single-byte tokens: prefix + next byte, left to right
        for end in range(1, len(spelled) + 1):
            if end > 1 and f"{spelled[: end - 1]} {spelled[end - 1]}" not in merges:
                merges.append(f"{spelled[: end - 1]} {spelled[end - 1]}")
            for piece in (spelled[end - 1], spelled[:end]):
                if piece not in vocab:
                    vocab[piece] = next_id
                    next_id += 1
    return _byte_level_json(vocab, merges, unk, [(next_id, END_OF_TEXT)])


def _byte_level_json(vocab: dict[str, int], merges: list[str], unk: str | None,
                     specials: list[tuple[int, str]]) -> dict:
    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False,
                  "use_regex": True}
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [{"id": i, "content": text, "single_word": False, "lstrip": False,
                          "rstrip": False, "normalized": False, "special": True}
                         for i, text in specials],
        "normalizer": None,
        "pre_tokenizer": byte_level,
        "post_processor": None,
        "decoder": byte_level,
        "model": {"type": "BPE", "dropout": None, "unk_token": unk,
                  "continuing_subword_prefix": "", "end_of_word_suffix": "", "fuse_unk": False,
                  "byte_fallback": False, "vocab": vocab, "merges": merges},
    }


def tokenizer_files(tokenizer: Tokenizer) -> dict[str, dict]:
    """tokenizer.json and tokenizer_config.json for `tokenizer`: a char vocabulary as above, a
    byte-level BPE as it was trained (the `tokenizers` library's own tokenizer.json)."""
    if isinstance(tokenizer, CharTokenizer):
        content = char_tokenizer_json(tokenizer)
        specials = {"bos_token": END_OF_TEXT, "eos_token": END_OF_TEXT,
                    "unk_token": content["model"]["unk_token"] or END_OF_TEXT}
    elif isinstance(tokenizer, BPETokenizer):
        content, specials = tokenizer.data, {}
    else:
        raise ExportError(
            f"onnxruntime-genai has no tokenizer for textgen's {type(tokenizer).__name__} "
            "(it reads byte-level BPE and SentencePiece files); export the model with "
            "`python -m export onnx` for runtime/")
    return {TOKENIZER_FILE: content,
            TOKENIZER_CONFIG_FILE: {"tokenizer_class": "GPT2Tokenizer", "add_prefix_space": False,
                                    "add_bos_token": False, "clean_up_tokenization_spaces": False,
                                    "model_max_length": 1 << 30, **specials}}


def genai_config(config: GPTConfig, shares_buffer: bool, rotary: bool) -> dict:
    """genai_config.json for the graph (the schema of onnxruntime-genai's model builder)."""
    inputs = {INPUT_IDS: INPUT_IDS, "attention_mask": MASK,
              "past_key_names": PAST_FORMAT.format("key"),
              "past_value_names": PAST_FORMAT.format("value")}
    if rotary:
        inputs[POSITION_IDS] = POSITION_IDS
    return {
        "model": {
            # Our models have no end-of-text token, and onnxruntime-genai ends a sequence at its
            # pad id, which must lie inside the vocabulary: the graph gets one more logit
            # (`end_of_text_logit`), always -1e30, so id vocab_size is a token the model never
            # chooses, and it is the pad, end and beginning id (the tokenizer's <|endoftext|>).
            "bos_token_id": config.vocab_size,
            "context_length": config.block_size,
            "decoder": {
                "session_options": {"log_id": "onnxruntime-genai", "provider_options": []},
                "filename": MODEL_FILE,
                "head_size": config.head_size,
                "hidden_size": config.n_embd,
                "inputs": inputs,
                "outputs": {LOGITS: LOGITS, "present_key_names": PRESENT_FORMAT.format("key"),
                            "present_value_names": PRESENT_FORMAT.format("value")},
                "num_attention_heads": config.n_head,
                "num_hidden_layers": config.n_layer,
                "num_key_value_heads": config.n_head,
            },
            "eos_token_id": config.vocab_size,
            "pad_token_id": config.vocab_size,
            "type": "llama",  # a plain decoder-only model: the loop reads names from here
            "vocab_size": config.vocab_size + 1,
        },
        "search": {
            "diversity_penalty": 0.0, "do_sample": False, "early_stopping": True,
            "length_penalty": 1.0, "max_length": config.block_size, "min_length": 0,
            "no_repeat_ngram_size": 0, "num_beams": 1, "num_return_sequences": 1,
            "past_present_share_buffer": shares_buffer, "repetition_penalty": 1.0,
            "temperature": 1.0, "top_k": 1, "top_p": 1.0,
        },
    }


NEVER_LOGIT = -1e30  # the end-of-text logit: exp() of it is 0 at any temperature


def end_of_text_logit(proto: onnx.ModelProto) -> None:
    """Give `proto`'s logits [b, s, V] one more column, id V, always NEVER_LOGIT, in place: the
    end-of-text (and padding) id onnxruntime-genai needs inside the vocabulary, never chosen,
    so a sequence ends at its length as in our runtime."""
    graph = proto.graph
    inner = "textgen_logits_vocab"
    for node in graph.node:
        node.output[:] = [inner if name == LOGITS else name for name in node.output]
    value = helper.make_tensor("textgen_never", onnx.TensorProto.FLOAT, [1], [NEVER_LOGIT])
    graph.node.extend([
        helper.make_node("Shape", [inner], ["textgen_logits_shape"], name="textgen_logits_shape",
                         end=2),
        helper.make_node("Constant", [], ["textgen_one_column"], name="textgen_one_column",
                         value=helper.make_tensor("c", onnx.TensorProto.INT64, [1], [1])),
        helper.make_node("Concat", ["textgen_logits_shape", "textgen_one_column"],
                         ["textgen_end_shape"], name="textgen_end_shape", axis=0),
        helper.make_node("ConstantOfShape", ["textgen_end_shape"], ["textgen_end_logit"],
                         name="textgen_end_logit", value=value),
        helper.make_node("Concat", [inner, "textgen_end_logit"], [LOGITS],
                         name="textgen_logits_with_end", axis=-1),
    ])
    output = next(o for o in graph.output if o.name == LOGITS)
    dim = output.type.tensor_type.shape.dim[2]
    if dim.HasField("dim_value"):
        dim.dim_value += 1


def mask_interface(proto: onnx.ModelProto) -> bool:
    """Give `proto` the input `attention_mask` [batch, total_sequence_length] int64 in place of
    the GroupQueryAttention lengths (computed from it in the graph); True if the graph had them
    (its cache can be shared in place with the present)."""
    graph = proto.graph
    lengths = [i for i in graph.input if i.name in LENGTH_INPUTS]
    for value in lengths:
        graph.input.remove(value)
    graph.input.append(helper.make_tensor_value_info(
        MASK, onnx.TensorProto.INT64, ["batch", "total_sequence_length"]))
    if not lengths:
        return False
    assert len(lengths) == len(LENGTH_INPUTS)
    seqlens, total = LENGTH_INPUTS
    one = "textgen_mask_one"
    nodes = [
        helper.make_node("Constant", [], [one], name="textgen_mask_one",
                         value=helper.make_tensor(one, onnx.TensorProto.INT64, [1], [1])),
        helper.make_node("ReduceSum", [MASK, one], ["textgen_mask_rows"], keepdims=0,
                         name="textgen_mask_rows"),
        helper.make_node("Sub", ["textgen_mask_rows", one], ["textgen_mask_last"],
                         name="textgen_mask_last"),
        helper.make_node("Cast", ["textgen_mask_last"], [seqlens], to=onnx.TensorProto.INT32,
                         name="textgen_seqlens_k"),
        helper.make_node("Shape", [MASK], ["textgen_mask_width"], start=1, end=2,
                         name="textgen_mask_width"),
        helper.make_node("Squeeze", ["textgen_mask_width"], ["textgen_mask_total"],
                         name="textgen_mask_total"),
        helper.make_node("Cast", ["textgen_mask_total"], [total], to=onnx.TensorProto.INT32,
                         name="textgen_total_sequence_length"),
    ]
    kept = list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes + kept)
    return True


def require_genai_support(config: GPTConfig, tokenizer: Tokenizer) -> None:
    """Refuse, before any work, a model or tokenizer onnxruntime-genai cannot run."""
    tokenizer_files(tokenizer)
    if config.yoke_state_size:
        raise ExportError("a stateful yoke's model takes yoke_state, which onnxruntime-genai "
                          "cannot feed; export it with `python -m export onnx` for runtime/")


def write_genai_folder(config: GPTConfig, tokenizer: Tokenizer, graph_file: Path,
                       folder: Path, report: Callable[[str], None] = print) -> list[Path]:
    """Write the folder from `graph_file` (an exported, parity-checked textgen ONNX file of the
    model, fp32 or quantized); returns the files written."""
    require_genai_support(config, tokenizer)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExportError(f"cannot create {folder}: {exc.strerror or exc}") from None
    proto = onnx.load(str(graph_file))
    shares_buffer = mask_interface(proto)
    end_of_text_logit(proto)
    texts = {CONFIG_FILE: genai_config(config, shares_buffer, config.rotary),
             **tokenizer_files(tokenizer)}
    try:
        written = [save_with_checksum(proto, folder / MODEL_FILE)]
        for name, content in texts.items():
            path = folder / name
            write_atomic(path, (json.dumps(content, ensure_ascii=False, indent=1) + "\n").encode("utf-8"))
            written.append(path)
    except OSError as exc:
        raise ExportError(f"cannot write {folder}: {describe_os_error(exc)}") from None
    report(f"wrote {folder}/ for onnxruntime-genai: {', '.join(p.name for p in written)}")
    cache = ("shared in place with the present" if shares_buffer
             else "grown by the present (learned positions)")
    report(f"  context {config.block_size} tokens (onnxruntime-genai stops there), cache {cache}")
    return written
