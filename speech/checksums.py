"""sha256 of files and of model directories, each computed once per content version.

A file's content version is its resolved path, size and modification time: a file rewritten in
place is hashed again, an unchanged one is not (model weights are hashed on every resolution).
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence
from pathlib import Path

FileVersion = tuple[str, int, int]
"""(resolved path, size, modification time in ns)."""


def file_sha256(path: Path) -> str:
    """sha256 of a file, computed once per content version (path, size, mtime) per process."""
    return _sha256_of((_version(path),))


def joined_sha256(paths: Sequence[Path]) -> str:
    """sha256 of the files joined in this order (a file split into parts), cached likewise."""
    return _sha256_of(tuple(_version(p) for p in paths))


def _version(path: Path) -> FileVersion:
    info = path.stat()
    return str(path.resolve()), info.st_size, info.st_mtime_ns


@functools.lru_cache(maxsize=64)
def _sha256_of(files: tuple[FileVersion, ...]) -> str:
    digest = hashlib.sha256()
    for path, _, _ in files:
        with Path(path).open("rb") as handle:
            for block in iter(functools.partial(handle.read, 1 << 22), b""):
                digest.update(block)
    return digest.hexdigest()


WEIGHT_FILES = ("model.bin", "*.safetensors", "pytorch_model.bin")


def weights_digest(model_dir: Path) -> str:
    """One sha256 over the weight files of a model directory (CTranslate2 ``model.bin``, the
    ``*.safetensors`` of an HF checkpoint or an export's head), so that a transcript annotated
    with other weights under the same path is recognised as such."""
    files = sorted({f for pattern in WEIGHT_FILES for f in model_dir.glob(pattern) if f.is_file()})
    digest = hashlib.sha256()
    for file in files:
        digest.update(f"{file.name}:{file_sha256(file)}\n".encode())
    return digest.hexdigest()
