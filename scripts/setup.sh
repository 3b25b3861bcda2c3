#!/usr/bin/env bash
# Create .venv and install textgen with everything its CLIs and tests need, from this checkout.
# torch is pinned first so pip keeps that build (a CPU wheel where one is available locally)
# instead of resolving a newer, multi-GB CUDA build for the unpinned requirement.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
TORCH_VERSION="${TEXTGEN_TORCH_VERSION:-2.13.0}"
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install --quiet --disable-pip-version-check "torch==${TORCH_VERSION}"
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[dev]"
