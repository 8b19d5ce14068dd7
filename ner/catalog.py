"""The NER models medstream can load: the one shipped in this package, or a directory.

The shipped model lives in ``ner/models/<name>/`` (the :mod:`ner.export` format: int8
CTranslate2 encoder + linear head) and is pinned by the sha256 of its ``model.bin``, like every
packaged model in :mod:`speech.catalog`; a mismatch is refused. Its model card is the folder's
``README.md``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from speech.catalog import file_sha256, weights_digest
from speech.errors import ModelIntegrityError, ModelNotFoundError

MODELS_DIR = Path(__file__).resolve().parent / "models"


@dataclass(frozen=True)
class ShippedModel:
    name: str
    description: str
    weights_sha256: str
    """sha256 of ``model.bin``."""

    @property
    def path(self) -> Path:
        return MODELS_DIR / self.name


SHIPPED_MODELS: Mapping[str, ShippedModel] = {
    "medical-en": ShippedModel(
        name="medical-en",
        description="English MiniLM-L6 tagger (MEDICATION, MEDICAL_CONDITION, ANATOMY) trained "
                    "on NCBI-disease, BC5CDR and AnatEM by recipes/ner; int8 CTranslate2",
        weights_sha256="80f7dc44837d23c51bb9c18b5dbbe4b201c3b534e0c75a1d6b020f50c55013fe",
    ),
}
DEFAULT_NER_MODEL = "medical-en"


@dataclass(frozen=True)
class ResolvedNerModel:
    name: str
    path: Path
    identifier: str


def resolve_ner_model(name: str = DEFAULT_NER_MODEL) -> ResolvedNerModel:
    """A model directory by path, or a shipped model by name (checksum verified)."""
    path = Path(name).expanduser()
    if path.is_dir():
        identifier = f"{path.resolve()} (sha256:{weights_digest(path)[:12]})"
        return ResolvedNerModel(name, path, identifier)
    shipped = SHIPPED_MODELS.get(name)
    if shipped is None:
        known = ", ".join(sorted(SHIPPED_MODELS))
        raise ModelNotFoundError(name, [f"local path {path}: does not exist"],
                                 f"Pass a model directory (a recipes/ner export or its "
                                 f"CTranslate2 export) or a shipped model: {known}.")
    return verify_shipped(shipped)


@cache
def verify_shipped(model: ShippedModel) -> ResolvedNerModel:
    weights = model.path / "model.bin"
    if not weights.is_file() or not model.weights_sha256:
        raise ModelNotFoundError(model.name, [f"shipped model: {weights} is missing"],
                                 "This checkout has no trained NER model yet: train one with "
                                 "recipes/ner and pass its directory with --model.")
    digest = file_sha256(weights)
    if digest != model.weights_sha256:
        raise ModelIntegrityError(f"the shipped NER model '{model.name}' has sha256 {digest}, "
                                  f"but medstream pins {model.weights_sha256}: the file was "
                                  "altered; restore it from the repository.")
    return ResolvedNerModel(model.name, model.path, f"{model.name} (sha256:{digest[:12]})")
