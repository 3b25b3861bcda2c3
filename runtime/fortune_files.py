"""Where the system's fortune files are (Debian `fortunes-min`/`fortunes`), for training's
`--corpus fortunes` (textgen_core/data/fortunes.py) and the torch-free chat's `--markup fortunes`.

The files are read from `/usr/share/games/fortunes`, or the folder named by
`TEXTGEN_FORTUNES_DIR`. Every regular file directly in that folder is a fortune file, except
the `strfile` indexes (`*.dat`), the `*.u8` links Debian adds beside each file, and hidden
files; subfolders (such as `off/`) are not read. Files are taken in name order.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

FORTUNES_DIR = Path("/usr/share/games/fortunes")
FORTUNES_ENV = "TEXTGEN_FORTUNES_DIR"
INSTALL_HINT = ("install Debian's fortunes-min (or fortunes) package: sudo apt-get install "
                f"fortunes-min, or set {FORTUNES_ENV} to a folder of fortune files")


def fortunes_dir() -> Path:
    override = os.environ.get(FORTUNES_ENV)
    return Path(override).expanduser() if override else FORTUNES_DIR


def find_fortune_files(folder: Path) -> tuple[Path, ...] | None:
    """The fortune files of `folder` in name order; None when the folder cannot be read."""
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError:
        return None
    files = []
    for entry in entries:
        if entry.name.startswith(".") or entry.name.endswith((".dat", ".u8")):
            continue
        try:
            st = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode):
            files.append(Path(entry.path))
    return tuple(files)
