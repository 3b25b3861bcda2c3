"""Where textgen caches downloaded corpora, token arrays and copy indexes (`TEXTGEN_CACHE`
overrides). In the torch-free runtime so that the chat finds the same cache as training."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def cache_dir() -> Path:
    override = os.environ.get("TEXTGEN_CACHE")
    if override:
        return Path(override).expanduser()
    if sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches"
    elif os.name == "nt":
        base = Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local"))
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "textgen"
