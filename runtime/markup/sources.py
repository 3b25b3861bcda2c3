"""Which files a markup corpus is, and what to call each one, without textgen_core.

The chat (`--markup CORPUS`) must stay torch-free, so it reads corpora directly:
- a .txt file, or a folder of .txt files (recursive, sorted, as training reads them);
- `shakespeare`: the text training cached (`<cache>/corpora/shakespeare.txt`);
- `fortunes`: the system's fortune files, as training finds them (runtime/fortune_files.py);
- `gutenberg:ID,...`: the cleaned books training cached (`<cache>/gutenberg/books/pg{ID}.txt`).
Nothing is downloaded here: `python -m textgen_core.markup` or a training run fetches corpora.

A source is labelled by its file name, or for a cached Gutenberg book by its title and number.
"""

from __future__ import annotations

import json
from pathlib import Path

from runtime.cache_dir import cache_dir
from runtime.errors import MarkupError
from runtime.fortune_files import INSTALL_HINT, find_fortune_files, fortunes_dir
from runtime.markup.copy_index import CopyIndex
from runtime.regular_file import CONFIG_LIMIT, read_regular

GUTENBERG_PREFIX = "gutenberg:"
GUTENBERG_SIDECAR = "textgen-gutenberg-book"


def index_dir() -> Path:
    return cache_dir() / "copy-index"


def source_label(path: Path, root: Path | None = None) -> str:
    """'Pride and Prejudice (Gutenberg #1342)' for a cached book, else the file's name (its path
    below `root` for a folder corpus)."""
    try:
        meta = json.loads(read_regular(path.with_suffix(".json"), CONFIG_LIMIT))
    except (OSError, ValueError, RecursionError):
        meta = None
    if isinstance(meta, dict) and meta.get("format") == GUTENBERG_SIDECAR:
        return f"{meta.get('title') or path.stem} (Gutenberg #{meta.get('id')})"
    if root is not None:
        return path.relative_to(root).as_posix()
    return path.name


def corpus_files(spec: str) -> tuple[list[Path], list[str]]:
    """Files and labels of a markup corpus named as the chat accepts it."""
    if spec == "shakespeare":
        path = cache_dir() / "corpora" / "shakespeare.txt"
        if not path.is_file():
            raise MarkupError("--markup shakespeare: the corpus is not cached yet; train on it once "
                              "(python -m textgen_core.train) or give a .txt file")
        return [path], [path.name]
    if spec == "fortunes":
        folder = fortunes_dir()
        found = find_fortune_files(folder)
        if not found:
            raise MarkupError(f"--markup fortunes: no fortune files at {folder}; {INSTALL_HINT}")
        return list(found), [path.name for path in found]
    if spec.startswith(GUTENBERG_PREFIX):
        files = []
        for part in spec[len(GUTENBERG_PREFIX):].split(","):
            path = cache_dir() / "gutenberg" / "books" / f"pg{part.strip()}.txt"
            if not path.is_file():
                raise MarkupError(f"--markup {spec}: book {part.strip()} is not downloaded; "
                                  "train on it or run python -m textgen_core.markup once")
            files.append(path)
        return files, [source_label(p) for p in files]
    path = Path(spec).expanduser()
    if path.is_dir():
        files = sorted(p for p in path.rglob("*.txt") if p.is_file())
        if not files:
            raise MarkupError(f"markup corpus folder {path} holds no .txt files")
        return files, [source_label(p, path) for p in files]
    if path.is_file():
        return [path], [source_label(path)]
    raise MarkupError(f"markup corpus not found: {spec} (give a .txt file, a folder of .txt files, "
                      "shakespeare, fortunes, or gutenberg:IDS already downloaded)")


def load_index(spec: str) -> CopyIndex:
    files, labels = corpus_files(spec)
    return CopyIndex.for_files(files, labels, cache=index_dir())
