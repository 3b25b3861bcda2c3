"""`--log tensorboard` and `--log wandb` (training/log_mirrors.py): what each wrote, read back,
holds the metrics log's figures at the same steps."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from textgen_core.train import main as train_main
from textgen_core.training.log_mirrors import mirror_folder
from textgen_core.training.metrics_log import read_metrics


def train(corpus: Path, out: Path, log: str, monkeypatch: pytest.MonkeyPatch) -> list[dict]:
    monkeypatch.setenv("TEXTGEN_STEP_LIMIT", "6")
    assert train_main(["--corpus", str(corpus), "--out", str(out), "--preset", "nano", "--dtype", "fp32",
                       "--max-iters", "6", "--log-interval", "2", "--eval-interval", "3",
                       "--sample-tokens", "0", "--log", log]) == 0
    records = read_metrics(out.with_suffix(".metrics.jsonl"))
    assert [r["step"] for r in records if r["event"] == "train"] == [2, 4, 6]
    assert [r["step"] for r in records if r["event"] == "eval"] == [3, 6]
    return records


def figures(records: list[dict]) -> dict[tuple[str, int], float]:
    return {(f"{r['event']}/{key}", r["step"]): float(value) for r in records if r["event"] in ("train", "eval")
            for key, value in r.items() if key != "step" and isinstance(value, (int, float))}


def test_tensorboard_holds_the_metrics_logs_figures(tiny_corpus_file: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "m.pt"
    records = train(tiny_corpus_file, out, "tensorboard", monkeypatch)
    events = EventAccumulator(str(mirror_folder(out, "tensorboard")), size_guidance={"scalars": 0})
    events.Reload()
    written = {(tag, e.step): e.value for tag in events.Tags()["scalars"] for e in events.Scalars(tag)}
    expected = figures(records)
    assert ("train/loss", 2) in expected and ("eval/val_loss", 6) in expected
    for key, value in expected.items():
        assert written[key] == pytest.approx(value, rel=1e-6), key
    start = json.loads(events.Tensors("start/text_summary")[0].tensor_proto.string_val[0])
    assert start["summary.params"] == records[0]["summary"]["params"]
    assert f"{mirror_folder(out, 'tensorboard')}/" in records[0]["summary"]["files"]  # the summary names it


def wandb_records(path: Path) -> list:
    """The records of an offline run's .wandb file (a LevelDB-style log of protobuf Records:
    32 KiB blocks, each record a 7-byte header of CRC, length and type full/first/middle/last)."""
    from wandb.proto import wandb_internal_pb2

    data, pos, pieces, out = path.read_bytes(), 7, b"", []
    assert data[:4] == b":W&B"
    while pos + 7 <= len(data):
        if 32768 - pos % 32768 < 7:  # a block's tail too short for a header is padding
            pos += 32768 - pos % 32768
            continue
        _, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        if kind == 0:
            break
        pieces += data[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):  # full, or the last piece of one
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pieces)
            out.append(record)
            pieces = b""
    return out


def test_wandb_offline_holds_the_metrics_logs_figures(tiny_corpus_file: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("wandb")
    monkeypatch.delenv("WANDB_MODE", raising=False)  # offline is the default
    monkeypatch.setenv("WANDB_SILENT", "true")
    out = tmp_path / "m.pt"
    records = train(tiny_corpus_file, out, "wandb", monkeypatch)
    (run_file,) = mirror_folder(out, "wandb").glob("wandb/offline-run-*/run-*.wandb")
    written: dict[tuple[str, int], float] = {}
    config: dict[str, str] = {}
    for record in wandb_records(run_file):
        kind = record.WhichOneof("record_type")
        if kind == "history":
            items = {item.key or "/".join(item.nested_key): item.value_json for item in record.history.item}
            step = int(items.pop("_step"))
            written.update({(key, step): float(value) for key, value in items.items() if not key.startswith("_")})
        elif kind == "config":
            config.update({item.key or "/".join(item.nested_key): item.value_json for item in record.config.update})
    for key, value in figures(records).items():
        assert written[key] == pytest.approx(value, rel=1e-9), key
    assert json.loads(config["summary.params"]) == records[0]["summary"]["params"]
