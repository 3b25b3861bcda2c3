"""Where downloaded corpora and token arrays are cached (`TEXTGEN_CACHE` overrides).

The location is computed in the torch-free runtime (runtime/cache_dir.py), which the chat's
verbatim-copy markup also reads."""

from __future__ import annotations

from runtime.cache_dir import cache_dir

__all__ = ["cache_dir"]
