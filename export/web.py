"""`python -m export web CKPT`: the model as a static web page, sampled in the browser.

The folder (default `<checkpoint stem>-web/` beside the checkpoint) holds:

- `model.onnx`: the file `python -m export onnx` writes, parity with torch checked as there;
  for a rotary GPT with each layer's new keys/values as extra outputs, checked too
  (export/web_graph.py). onnxruntime-web's WebAssembly build carries onnxruntime's contrib
  operators, so the fused graph (GroupQueryAttention, RotaryEmbedding, Gelu:
  export/onnx_fusion.py) runs as it is; tests/export/test_web.py proves greedy decoding equal to
  the Python runtime's in Chromium;
- `textgen.json`: the tokenizer (runtime/tokenizer.py's JSON), the model config, the port names
  of runtime/contract.py, how the decode loop reads the context (runtime/window.py,
  runtime/stack.py), and the facts the page shows;
- our ES modules (runtime/web/: one per concept of the Python runtime, no build step) and
  `index.html`;
- onnxruntime-web's three WebAssembly files at a pinned version (export/onnxruntime_web.py).

A stateful yoke reads a state carried across windows, which the page's decode loop does not
carry; it is refused in one line.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import onnx

from export import onnxruntime_web
from export.errors import ExportError
from export.onnx_file import save_with_checksum
from export.web_graph import add_new_cache_outputs, check_web_graph, new_names
from runtime.atomic_file import describe_os_error, publish, write_atomic
from runtime.contract import (
    BLOCK_NOISE,
    GLOBAL_NOISE,
    INPUT_IDS,
    LOGITS,
    POSITION_IDS,
    SEQLENS_K,
    STEP_NOISE,
    TOKEN_IDS,
    TOTAL_SEQUENCE_LENGTH,
    UNIFORM,
    past_names,
    present_names,
)
from runtime.file_kind import TAKES_CHECKPOINT, explained
from runtime.regular_file import read_regular
from runtime.window import roll_limit
from textgen_core.training.checkpoint import load_checkpoint

WEB_FORMAT = "textgen-web"
WEB_FORMAT_VERSION = 1
MODEL_FILE = "model.onnx"
SETTINGS_FILE = "textgen.json"
SCRIPT_LIMIT = 1 << 20  # bytes of one of our page files
SCRIPTS = Path(__file__).resolve().parent.parent / "runtime" / "web"
PAGE_FILES = ("index.html", "page.js", "textgen.js", "tokenizer.js", "word_tokenizer.js",
              "bpe_tokenizer.js", "sampler.js", "decode.js", "gpt.js", "stack.js", "gan.js")


def default_folder(checkpoint: str) -> Path:
    ckpt = Path(checkpoint)
    return ckpt.with_name(f"{ckpt.stem}-web")


def _kind_settings(sampler: Any) -> dict[str, Any]:
    """What the page's model module needs beyond the config: port names and context rules."""
    from runtime.gan import GANSampler
    from runtime.gpt import TextGenerator
    from runtime.stack import state_input_names, state_layers, state_output_names

    if isinstance(sampler, TextGenerator):
        shape = sampler.model.shape
        return {"ports": {"input_ids": INPUT_IDS, "logits": LOGITS, "position_ids": POSITION_IDS,
                          "seqlens_k": SEQLENS_K, "total_sequence_length": TOTAL_SEQUENCE_LENGTH,
                          "past": past_names(shape.n_layer), "present": present_names(shape.n_layer)},
                "gpt": {"rotary": shape.rotary, "length_inputs": shape.cache_buffers,
                        "roll_limit": roll_limit(shape.block_size)}}
    if isinstance(sampler, GANSampler):
        return {"ports": {"global_noise": GLOBAL_NOISE, "step_noise": STEP_NOISE,
                          "block_noise": BLOCK_NOISE, "uniform": UNIFORM, "token_ids": TOKEN_IDS}}
    layers = sampler.model.layers
    sizes = [hidden for _, kind, hidden in state_layers(layers) for _ in range(2 if kind == "LSTM" else 1)]
    return {"ports": {"input_ids": INPUT_IDS, "logits": LOGITS},
            "stack": {"windowed": sampler.model.windowed,
                      "sequence_length": sampler.model.sequence_length,
                      "state_inputs": state_input_names(layers),
                      "state_outputs": state_output_names(layers), "state_sizes": sizes}}


def _parameters(model_file: Path) -> int:
    """Elements of the graph's weights: the parameters the page runs (tied weights once)."""
    proto = onnx.load(str(model_file), load_external_data=False)
    total = 0
    for tensor in proto.graph.initializer:
        if tensor.data_type in (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16):
            count = 1
            for dim in tensor.dims:
                count *= dim
            total += count
    return total


def page_settings(checkpoint: str, payload: dict[str, Any], model_file: Path) -> dict[str, Any]:
    """textgen.json's content, from the exported file as the Python runtime opens it."""
    import runtime

    sampler = runtime.load(model_file, threads=1)
    tokenizer = sampler.tokenizer.to_dict()
    state = payload.get("train_state") or {}
    val_loss = state.get("val_loss")
    facts = {"name": Path(checkpoint).stem, "kind": payload["kind"],
             "parameters": _parameters(model_file), "tokenizer": tokenizer["type"],
             "vocab_size": sampler.tokenizer.vocab_size,
             "corpus": str(state.get("corpus") or "an unnamed corpus"), "steps": int(state.get("step", 0)),
             "val_loss": float(val_loss) if isinstance(val_loss, (int, float)) and val_loss == val_loss
             else None}
    return {"format": WEB_FORMAT, "version": WEB_FORMAT_VERSION, "kind": payload["kind"],
            "model_file": MODEL_FILE, "config": sampler.config, "tokenizer": tokenizer,
            "onnxruntime_web": onnxruntime_web.VERSION, "facts": facts, **_kind_settings(sampler)}


def _web_graph(model_file: Path, config: dict[str, Any]) -> list[str] | None:
    """`model_file` rewritten as the web graph (export/web_graph.py) and checked; the names of its
    new-cache outputs, or None for a graph that keeps the plain interface."""
    n_layer, n_head, n_embd = config["n_layer"], config["n_head"], config["n_embd"]
    proto = onnx.load(str(model_file))
    if not add_new_cache_outputs(proto, n_layer, n_embd):
        return None
    try:
        save_with_checksum(proto, model_file)
    except OSError as exc:
        raise ExportError(f"cannot write {model_file}: {describe_os_error(exc)}") from None
    check_web_graph(model_file, n_layer, n_head, n_embd // n_head, config["block_size"],
                    config["vocab_size"])
    return new_names(n_layer)


def _refuse_stateful_yoke(payload: dict[str, Any], checkpoint: str) -> None:
    if payload["kind"] != "gpt":
        return
    from textgen_core.models.gpt import GPTConfig

    if GPTConfig.from_dict(payload["model_config"]).yoke_state_size:
        raise ExportError(f"{checkpoint} has a stateful yoke, whose state rides across windows; the "
                          "web page does not carry it (export it with `python -m export onnx` for the "
                          "Python runtime)")


def folder_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.iterdir() if p.is_file())


def write_web_folder(checkpoint: str, out: str | None = None,
                     report: Callable[[str], None] = print) -> list[Path]:
    """Write the page's folder for `checkpoint`; returns its files."""
    from export.cli import export_checkpoint

    with explained((checkpoint, TAKES_CHECKPOINT)):  # as export_checkpoint reads it
        payload = load_checkpoint(checkpoint)
    _refuse_stateful_yoke(payload, checkpoint)
    folder = Path(out) if out else default_folder(checkpoint)
    runtime_files = onnxruntime_web.page_files()  # before the slow export: fails fast without npm
    try:
        scripts = {name: read_regular(SCRIPTS / name, SCRIPT_LIMIT) for name in PAGE_FILES}
    except OSError as exc:
        raise ExportError(f"cannot read the page's files in {SCRIPTS}: {exc.strerror or exc} (is "
                          "textgen installed with its runtime/web/ folder?)") from None
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        work = tempfile.TemporaryDirectory(dir=folder.parent, prefix=f".{folder.name}.")
    except OSError as exc:
        raise ExportError(f"cannot create {folder}: {exc.strerror or exc}") from None
    with work as tmp:
        staged = Path(tmp) / MODEL_FILE
        export_checkpoint(checkpoint, "onnx", str(staged),
                          report=lambda line: report(line.replace(str(staged), f"{folder}/{MODEL_FILE}")))
        settings = page_settings(checkpoint, payload, staged)
        if payload["kind"] == "gpt":
            settings["gpt"]["new"] = _web_graph(staged, settings["config"])
        files: dict[str, bytes] = {
            SETTINGS_FILE: (json.dumps(settings, ensure_ascii=False, indent=1) + "\n").encode("utf-8"),
            **scripts,
            **runtime_files,
        }
        try:
            folder.mkdir(exist_ok=True)
            for name, data in files.items():
                write_atomic(folder / name, data)
            publish(staged, folder / MODEL_FILE)
        except OSError as exc:
            raise ExportError(f"cannot write {folder}: {describe_os_error(exc)}") from None
    written = [folder / MODEL_FILE, *(folder / name for name in files)]
    size = folder_size(folder)
    report(f"wrote {folder}/ ({size / 1e6:.1f} MB: the model, {len(PAGE_FILES)} page files, "
           f"onnxruntime-web {onnxruntime_web.VERSION}); try it with "
           f"`python -m http.server -d {folder}`")
    return written
