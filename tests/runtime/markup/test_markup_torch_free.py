"""The chat's markup path (corpus files, index, terminal colours) runs without torch or
textgen_core, like the rest of the runtime."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from runtime.errors import MarkupError
from runtime.markup.sources import corpus_files

REPO = Path(__file__).resolve().parents[3]

SCRIPT = textwrap.dedent("""
    import sys
    BLOCKED = ("torch", "nltk", "onnx", "textgen_core", "export", "matplotlib")

    class Blocker:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError(f"runtime must not import {name}")
            return None

    sys.meta_path.insert(0, Blocker())
    from runtime.markup.render import to_terminal
    from runtime.markup.sources import load_index
    markup = load_index(sys.argv[1]).mark("zz the quick brown fox jumps over zz", min_run=10)
    assert [r.length for r in markup.runs] == [32], markup.runs
    print(to_terminal(markup).plain)
""")


def test_markup_runs_with_torch_blocked(tmp_path: Path) -> None:
    corpus = tmp_path / "fox.txt"
    corpus.write_text("Once the quick brown fox jumps over the lazy dog.\n", encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(REPO), "TEXTGEN_CACHE": str(tmp_path / "cache")}
    result = subprocess.run([sys.executable, "-c", SCRIPT, str(corpus)], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "the quick brown fox jumps over" in result.stdout
    assert list((tmp_path / "cache" / "copy-index").glob("*.sa.npy"))


def test_markup_fortunes_reads_the_fortune_files_as_training_finds_them(tmp_path: Path) -> None:
    folder = tmp_path / "fortunes"
    folder.mkdir()
    (folder / "sayings").write_text("Seen: the quick brown fox jumps over the lazy dog.\n%\nOther.\n",
                                    encoding="utf-8")
    (folder / "sayings.dat").write_bytes(b"\x00\x02 the quick brown fox jumps over it")  # index
    env = {**os.environ, "PYTHONPATH": str(REPO), "TEXTGEN_CACHE": str(tmp_path / "cache"),
           "TEXTGEN_FORTUNES_DIR": str(folder)}
    result = subprocess.run([sys.executable, "-c", SCRIPT, "fortunes"], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_markup_fortunes_without_the_files_says_what_to_install(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEXTGEN_FORTUNES_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(MarkupError, match=r"no fortune files at .*fortunes-min"):
        corpus_files("fortunes")
