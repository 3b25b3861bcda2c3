"""What an exported textgen file and the runtime that reads it agree on, spelled once.

The exporter (`export/`, torch) writes these names and the runtime (numpy + onnxruntime) reads
them, so both import this module; it needs nothing but Python. README, "ONNX interface", is the
same contract in prose.

- Kinds: every file says which model family it holds (`textgen.kind`, and the TorchScript
  header's `kind`).
- Metadata: the keys of `metadata_props` every textgen ONNX file carries. The tokenizer rides as
  the JSON of runtime/tokenizer.py's `tokenizer_from_dict` (char, word or bpe); the model config
  as the JSON of the family's config.
- Ports: the input and output names of each family's graph. A GPT's key/value cache is one
  `[batch, n_head, positions, head_size]` float32 pair per layer, with onnxruntime-genai's names.
"""

from __future__ import annotations

KINDS = ("gpt", "gan", "stack")

ONNX_FORMAT = "textgen-onnx"
ONNX_FORMAT_VERSION = 1

KEY_FORMAT = "textgen.format"
KEY_FORMAT_VERSION = "textgen.format_version"
KEY_KIND = "textgen.kind"
KEY_TOKENIZER = "textgen.tokenizer"
KEY_MODEL_CONFIG = "textgen.model_config"
KEY_CHECKSUM = "textgen.checksum"

# GPT graph: input_ids [b, s] -> logits [b, s, V], the cache as past -> present.
INPUT_IDS = "input_ids"
LOGITS = "logits"
POSITION_IDS = "position_ids"  # rotary files: [b, s] int64
SEQLENS_K = "seqlens_k"  # GroupQueryAttention files: [b] int32, valid cache positions - 1
TOTAL_SEQUENCE_LENGTH = "total_sequence_length"  # GroupQueryAttention files: [] int32
LENGTH_INPUTS = (SEQLENS_K, TOTAL_SEQUENCE_LENGTH)
YOKE_STATE = "yoke_state"  # stateful yoke: [b, H] in
YOKE_STATE_OUT = "yoke_state_out"  # stateful yoke: [b, s, H] out
CACHE_PARTS = ("key", "value")
PAST_FORMAT = "past_key_values.%d.{}"  # onnxruntime-genai's genai_config spelling, per part
PRESENT_FORMAT = "present.%d.{}"


def past_name(layer: int, part: str) -> str:
    return PAST_FORMAT.format(part) % layer


def present_name(layer: int, part: str) -> str:
    return PRESENT_FORMAT.format(part) % layer


def past_names(n_layer: int) -> list[str]:
    return [past_name(i, part) for i in range(n_layer) for part in CACHE_PARTS]


def present_names(n_layer: int) -> list[str]:
    return [present_name(i, part) for i in range(n_layer) for part in CACHE_PARTS]


def gpt_input_names(n_layer: int, stateful: bool = False, rotary: bool = False) -> list[str]:
    """The exported GPT's inputs in the exporter's positional order (before the fusion adds the
    GroupQueryAttention length inputs)."""
    return [INPUT_IDS, *past_names(n_layer)] + [POSITION_IDS] * rotary + [YOKE_STATE] * stateful


def gpt_output_names(n_layer: int, stateful: bool = False) -> list[str]:
    return [LOGITS, *present_names(n_layer)] + [YOKE_STATE_OUT] * stateful


# Layer-stack graph: input_ids -> logits, plus one state pair per RNN/LSTM layer
# (runtime/stack.py decides which layers carry state and in what order).
def state_input_name(layer: int, part: str) -> str:
    return f"state.{layer}.{part}"


def state_output_name(layer: int, part: str) -> str:
    return "next_" + state_input_name(layer, part)


# GAN generator graph: noise in, every step's words out in one call.
GLOBAL_NOISE = "global_noise"  # [b, S, E], or [b, S] with the 1-d noise
STEP_NOISE = "step_noise"  # [b, S, E]
BLOCK_NOISE = "block_noise"  # [b, B, S, E]
UNIFORM = "uniform"  # when the generator samples its softmax: [b, S] in [0, 1)
TEMPERATURE = "temperature"  # with UNIFORM: [] float32, an input that is also an initializer (1.0)
TOKEN_IDS = "token_ids"  # [b, S] int64
PROBS = "probs"  # [b, S, V] float32
GAN_OUTPUTS = (TOKEN_IDS, PROBS)
