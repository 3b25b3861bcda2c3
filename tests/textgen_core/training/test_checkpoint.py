import errno
import io
import os
import pickle
from pathlib import Path

import pytest
import torch

from textgen_core.errors import CheckpointError
from textgen_core.models.gpt import gpt_from_checkpoint
from textgen_core.training.checkpoint import load_checkpoint, make_checkpoint, save_checkpoint


def test_round_trip_with_weights_only(tiny_gpt_checkpoint: Path, tmp_path: Path) -> None:
    payload = load_checkpoint(tiny_gpt_checkpoint, kind="gpt")
    model, tokenizer = gpt_from_checkpoint(payload)
    again = tmp_path / "again.pt"
    save_checkpoint(payload, again)
    raw = torch.load(again, weights_only=True)
    assert raw["format"] == "textgen-checkpoint" and raw["kind"] == "gpt"
    reloaded, _ = gpt_from_checkpoint(load_checkpoint(again))
    for (name, a), (_, b) in zip(model.state_dict().items(), reloaded.state_dict().items(), strict=True):
        assert torch.equal(a, b), name
    assert tokenizer.vocab_size == model.config.vocab_size


def test_save_leaves_no_temporary_files(tmp_path: Path) -> None:
    payload = make_checkpoint(kind="gpt", model_config={}, tokenizer={}, model_state={})
    save_checkpoint(payload, tmp_path / "a.pt")
    save_checkpoint(payload, tmp_path / "a.pt")
    assert os.listdir(tmp_path) == ["a.pt"]


def test_unwritable_directory_keeps_previous_checkpoint(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root ignores directory permissions")
    payload = make_checkpoint(kind="gpt", model_config={}, tokenizer={}, model_state={})
    save_checkpoint(payload, tmp_path / "a.pt")
    before = (tmp_path / "a.pt").read_bytes()
    tmp_path.chmod(0o500)
    try:
        with pytest.raises(CheckpointError, match="previous checkpoint is unchanged"):
            save_checkpoint({**payload, "kind": "gpt", "train_state": {"step": 9}}, tmp_path / "a.pt")
    finally:
        tmp_path.chmod(0o700)
    assert (tmp_path / "a.pt").read_bytes() == before


def test_output_under_a_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    payload = make_checkpoint(kind="gpt", model_config={}, tokenizer={}, model_state={})
    with pytest.raises(CheckpointError, match="cannot create directory"):
        save_checkpoint(payload, tmp_path / "file" / "a.pt")


def test_truncated_checkpoint(tiny_gpt_checkpoint: Path, tmp_path: Path) -> None:
    data = tiny_gpt_checkpoint.read_bytes()
    cut = tmp_path / "cut.pt"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="corrupt, truncated or unsafe"):
        load_checkpoint(cut)


def test_foreign_file_and_missing_file(tmp_path: Path) -> None:
    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": {}}, foreign)
    with pytest.raises(CheckpointError, match="not a textgen checkpoint"):
        load_checkpoint(foreign)
    with pytest.raises(CheckpointError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "missing.pt")


def test_wrong_kind_is_named(tmp_path: Path) -> None:
    path = tmp_path / "gan.pt"
    save_checkpoint(make_checkpoint(kind="gan", model_config={}, tokenizer={}, model_state={}), path)
    with pytest.raises(CheckpointError, match="holds a 'gan' model, but this command needs a 'gpt'"):
        load_checkpoint(path, kind="gpt")


class _RunsCode:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # what a malicious checkpoint does: call a function on load
        return (Path.write_text, (self.marker, "pwned"))


def test_pickle_that_would_run_code_is_refused_and_nothing_runs(tmp_path: Path) -> None:
    marker = tmp_path / "ran.txt"
    evil = tmp_path / "evil.pt"
    torch.save({"format": "textgen-checkpoint", "payload": _RunsCode(marker)}, evil,
               pickle_protocol=pickle.DEFAULT_PROTOCOL)
    with pytest.raises(CheckpointError, match="unsafe"):
        load_checkpoint(evil)
    assert not marker.exists()


def test_disk_full_mid_save_keeps_previous_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    payload = make_checkpoint(kind="gpt", model_config={}, tokenizer={}, model_state={})
    target = tmp_path / "a.pt"
    save_checkpoint(payload, target)
    before = target.read_bytes()

    def fill_disk(obj: object, f: io.BufferedWriter) -> None:
        f.write(b"partial bytes")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", fill_disk)
    with pytest.raises(CheckpointError, match="disk full; the previous checkpoint is unchanged"):
        save_checkpoint(payload, target)
    assert target.read_bytes() == before
    assert os.listdir(tmp_path) == ["a.pt"]
