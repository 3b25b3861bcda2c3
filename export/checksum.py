"""Stamp a whole-file sha256 into an ONNX file's metadata (verified by runtime/onnx_scan.py).

The model is saved with a 64-character placeholder in `textgen.checksum`; the digest of those
bytes then overwrites the placeholder in place. The byte length does not change, so the digest of
the file with the value zeroed again is the stored value.
"""

from __future__ import annotations

from pathlib import Path

import onnx

from runtime.atomic_file import write_atomic
from runtime.onnx_scan import CHECKSUM_KEY, CHECKSUM_PLACEHOLDER, CHECKSUM_PREFIX, checksum_of


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
