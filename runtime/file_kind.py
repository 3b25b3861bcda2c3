"""What a path holds, told by its content (never by its name), and which command takes it.

Every entry point's path arguments go through `explained`: when loading a path fails, the path is
sniffed and, when it holds a kind of file the argument does not take (a training checkpoint given
to the chat, an exported model given to `textgen_core.sample`, a model given as a corpus), the
error names what it is and the command that opens it instead of the loader's own complaint
("protobuf: field number 0", "unsafe pickle").

The kinds:
    checkpoint   a zip written by torch.save whose pickle holds our "textgen-checkpoint" marker
    pytorch      any other torch.save zip (nanoGPT's ckpt.pt, someone's state_dict)
    torchscript  a zip written by torch.jit.save (it has code/ and constants.pkl members)
    onnx         a protobuf ModelProto: field 1 (ir_version) first, then a ModelProto field
    genai        a folder holding genai_config.json (onnxruntime-genai's model folder)
    folder       any other folder (a corpus folder of .txt files)
    text         no NUL byte and utf-8 in its first 64 KiB
Torch-free: zipfile and bytes only, a bounded read of the head of the file.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import stat
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path

from runtime.errors import TextgenError
from runtime.regular_file import open_regular

CHECKPOINT = "checkpoint"
PYTORCH = "pytorch"
TORCHSCRIPT = "torchscript"
ONNX = "onnx"
GENAI = "genai"
FOLDER = "folder"
TEXT = "text"
KINDS = (CHECKPOINT, PYTORCH, TORCHSCRIPT, ONNX, GENAI, FOLDER, TEXT)

# What an argument takes: a training checkpoint, an exported model, or text (a corpus, a prompt
# file, a config file).
TAKES_CHECKPOINT = (CHECKPOINT,)
TAKES_MODEL = (ONNX, TORCHSCRIPT)
TAKES_TEXT = (TEXT, FOLDER)

WHAT = {
    CHECKPOINT: "a training checkpoint",
    PYTORCH: "a PyTorch file but not a textgen checkpoint",
    TORCHSCRIPT: "an exported TorchScript model",
    ONNX: "an exported ONNX model",
    GENAI: "an onnxruntime-genai model folder",
    FOLDER: "a folder",
    TEXT: "a text file",
}

HEAD_BYTES = 64 * 1024
_MAX_MEMBERS = 100_000  # a torch zip of a big model has a few thousand; more is not one of ours
_MAX_PICKLE = 16 * 1024 * 1024  # data.pkl of a checkpoint: a few KiB (tensors are separate members)
_CHECKPOINT_MARK = b"textgen-checkpoint"
# ModelProto fields after ir_version (1): producer_name 2, producer_version 3, domain 4,
# model_version 5, doc_string 6, graph 7, opset_import 8, metadata_props 14, training_info 20,
# functions 25; as the first byte of their tag.
_ONNX_NEXT_TAGS = {0x12, 0x1A, 0x22, 0x28, 0x32, 0x3A, 0x42, 0x72, 0xA2, 0xCA}


def sniff(path: str | os.PathLike[str]) -> str | None:
    """The kind of file at `path` (one of KINDS), or None: missing, empty, unreadable, or none
    of them (then the loader's own error stands)."""
    p = Path(path)
    try:
        info = p.stat()
    except (OSError, ValueError):
        return None
    if stat.S_ISDIR(info.st_mode):
        return GENAI if (p / "genai_config.json").is_file() else FOLDER
    if not stat.S_ISREG(info.st_mode) or info.st_size == 0:
        return None
    try:
        with open_regular(p) as f:  # the head only (a FIFO swapped in cannot block); nothing is loaded
            head = f.read(HEAD_BYTES)
    except OSError:
        return None
    if head.startswith(b"PK\x03\x04"):
        return _zip_kind(p)
    if _looks_like_onnx(head):
        return ONNX
    if b"\0" not in head and _is_utf8(head, truncated=len(head) == HEAD_BYTES):
        return TEXT
    return None


def _zip_kind(path: Path) -> str | None:
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
            if len(members) > _MAX_MEMBERS:
                return None
            names = [m.filename for m in members]
            if any(n.endswith("/constants.pkl") or "/code/" in n for n in names):
                return TORCHSCRIPT
            pickle = next((m for m in members if m.filename.endswith("/data.pkl")
                           and m.filename.count("/") == 1), None)
            if pickle is None:
                return None
            if pickle.file_size > _MAX_PICKLE:
                return PYTORCH
            with archive.open(pickle) as stream:
                data = stream.read(_MAX_PICKLE + 1)
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error, ValueError, RuntimeError,
            NotImplementedError):
        return None
    return CHECKPOINT if _CHECKPOINT_MARK in data else PYTORCH


def _looks_like_onnx(head: bytes) -> bool:
    """ModelProto as every writer serialises it: ir_version (a small varint) first."""
    if len(head) < 3 or head[0] != 0x08:
        return False
    i, version = 1, 0
    while i < min(len(head), 4):
        version |= (head[i] & 0x7F) << (7 * (i - 1))
        if not head[i] & 0x80:
            break
        i += 1
    else:
        return False
    return 1 <= version <= 100 and i + 1 < len(head) and head[i + 1] in _ONNX_NEXT_TAGS


def _is_utf8(head: bytes, truncated: bool) -> bool:
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A character cut by the end of the head is not an error.
        return truncated and exc.start >= len(head) - 3 and exc.reason == "unexpected end of data"
    return True


def how_to_use(path: str | os.PathLike[str], kind: str, takes: tuple[str, ...]) -> str:
    """The command that takes a file of `kind` (`takes`: what the refusing argument takes, so a
    checkpoint given where an exported model is wanted is told to export first)."""
    q = shlex.quote(str(path))
    if kind == CHECKPOINT:
        if ONNX in takes:
            return f"export it first with `python -m export onnx {q}`"
        return f"sample it with `python -m textgen_core.sample {q}` or export it with " \
               f"`python -m export onnx {q}`"
    if kind == PYTORCH:
        return "textgen reads only its own checkpoints: train one with `python -m textgen_core.train`"
    if kind == ONNX:
        return f"open it with `python -m runtime.chat --model {q}`"
    if kind == TORCHSCRIPT:
        return f"open it with `python -m runtime.chat --trust-torchscript --model {q}` (loading it " \
               "runs code from the file)"
    if kind == GENAI:
        return f"open it with onnxruntime-genai (`og.Model({str(path)!r})`)"
    if kind == FOLDER:
        return f"train on the .txt files in it with `python -m textgen_core.train --corpus {q}`"
    return f"train on it with `python -m textgen_core.train --corpus {q}`"


def wrong_kind(path: str | os.PathLike[str], takes: tuple[str, ...]) -> str | None:
    """The one-line message when `path` holds, by its content, a kind of file other than those
    `takes`; None when it is one of them or cannot be told."""
    kind = sniff(path)
    # A plain folder given for a file: the loaders already say "is a directory".
    if kind is None or kind in takes or kind == FOLDER:
        return None
    return f"{path} is {WHAT[kind]}: {how_to_use(path, kind, takes)}"


PathArgument = tuple["str | os.PathLike[str] | None", tuple[str, ...]]


@contextlib.contextmanager
def explained(*arguments: PathArgument) -> Iterator[None]:
    """Run what reads the `(path, takes)` arguments (a None path: not given); when it fails with
    a TextgenError and one of the paths holds another kind of file than its argument takes, fail
    with `wrong_kind`'s message instead (the same exception type, so callers catch what they
    caught before)."""
    try:
        yield
    except TextgenError as exc:
        for path, takes in arguments:
            better = None if path is None else wrong_kind(path, takes)
            if better is not None:
                raise type(exc)(better) from None
        raise


def missing_model(path: str | os.PathLike[str]) -> str | None:
    """For an exported-model argument that names nothing usable: what to do instead (export the
    checkpoint beside it, train one first, or pick a model file in the folder given); None when
    the path exists as a file."""
    p = Path(path)
    if p.is_dir():
        if sniff(p) == GENAI:
            return None  # wrong_kind names it
        found = sorted(str(f) for f in p.iterdir() if f.suffix in (".onnx", ".ts") and f.is_file())[:4]
        inside = f"; the model files in it: {', '.join(found)}" if found else "; it holds no .onnx file"
        return f"{path} is a folder, not a model file{inside}"
    if p.exists():
        return None
    checkpoint = p.with_suffix(".pt")
    if sniff(checkpoint) == CHECKPOINT:
        return (f"{path} does not exist yet: export it from the checkpoint beside it with "
                f"`python -m export onnx {shlex.quote(str(checkpoint))}`")
    return (f"model file not found: {path} (train a model with `python -m textgen_core.train`, "
            "export it with `python -m export onnx models/gpt.pt`, then give --model the .onnx file)")
