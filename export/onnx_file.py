"""Write a textgen ONNX file: the opset every export uses, the textgen header in metadata_props
(runtime/contract.py names its keys) and the whole-file checksum.

Stamp a whole-file sha256 into an ONNX file's metadata (verified by runtime/onnx_scan.py).

The model is saved with a 64-character placeholder in `textgen.checksum`; the digest of those
bytes then overwrites the placeholder in place. The byte length does not change, so the digest of
the file with the value zeroed again is the stored value.
"""

from __future__ import annotations

import json
from pathlib import Path

import onnx

from runtime.atomic_file import write_atomic
from runtime.contract import (
    KEY_FORMAT,
    KEY_FORMAT_VERSION,
    KEY_KIND,
    KEY_MODEL_CONFIG,
    KEY_TOKENIZER,
    ONNX_FORMAT,
    ONNX_FORMAT_VERSION,
)
from runtime.onnx_scan import CHECKSUM_KEY, CHECKSUM_PLACEHOLDER, CHECKSUM_PREFIX, checksum_of

OPSET = 18


def add_checksum_placeholder(proto: onnx.ModelProto) -> None:
    kept = [p for p in proto.metadata_props if p.key != CHECKSUM_KEY]
    del proto.metadata_props[:]
    proto.metadata_props.extend(kept)
    proto.metadata_props.add(key=CHECKSUM_KEY, value=CHECKSUM_PLACEHOLDER.decode())


def save_with_checksum(proto: onnx.ModelProto, path: str | Path) -> Path:
    """Serialise `proto` with a stamped checksum to `path` (atomically)."""
    path = Path(path)
    add_checksum_placeholder(proto)
    data = proto.SerializeToString()
    assert data.count(CHECKSUM_PREFIX) == 1
    digest = checksum_of(data)
    assert digest is not None
    at = data.find(CHECKSUM_PREFIX) + len(CHECKSUM_PREFIX)
    stamped = data[:at] + digest.encode() + data[at + 64 :]
    write_atomic(path, stamped)
    return path


def set_metadata(
    proto: onnx.ModelProto, *, kind: str, tokenizer: dict, model_config: dict
) -> None:
    entries = {
        KEY_FORMAT: ONNX_FORMAT,
        KEY_FORMAT_VERSION: str(ONNX_FORMAT_VERSION),
        KEY_KIND: kind,
        KEY_TOKENIZER: json.dumps(tokenizer, ensure_ascii=False),
        KEY_MODEL_CONFIG: json.dumps(model_config),
    }
    kept = [p for p in proto.metadata_props if p.key not in entries]
    del proto.metadata_props[:]
    proto.metadata_props.extend(kept)
    for key, value in entries.items():
        proto.metadata_props.add(key=key, value=value)


def save_textgen_onnx(proto: onnx.ModelProto, path: Path, *, kind: str, tokenizer: dict,
                      model_config: dict) -> Path:
    """Stamp the textgen header on `proto` and write it, with its checksum, to `path`."""
    set_metadata(proto, kind=kind, tokenizer=tokenizer, model_config=model_config)
    path.parent.mkdir(parents=True, exist_ok=True)
    return save_with_checksum(proto, path)
