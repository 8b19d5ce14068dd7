"""The NER models medstream can load: one shipped in this project, or a directory.

A shipped model lives in ``ner/models/<name>/`` (the :mod:`ner.export` format: int8 CTranslate2
encoder + linear head) and is a pinned model of :mod:`speech.packaged`, pinned by the sha256 of
its ``model.bin`` and checked by the shared resolver; a mismatch is refused. Its model card is
the folder's ``README.md``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from speech.checksums import weights_digest
from speech.errors import ModelNotFoundError
from speech.packaged import (
    ModelFolder,
    PinnedModel,
    identifier,
    pinned_models,
    register,
    resolve_pinned,
)

MODELS_DIR = Path(__file__).resolve().parent / "models"


def _shipped(name: str, description: str, weights_sha256: str) -> PinnedModel:
    folder = MODELS_DIR / name
    return PinnedModel(kind="ner", name=name, description=description, folder=folder,
                       weights=(folder / "model.bin",), weights_sha256=weights_sha256)


register(
    _shipped("medical-en",
             "English MiniLM-L6 tagger (MEDICATION, MEDICAL_CONDITION, ANATOMY) trained on "
             "NCBI-disease, BC5CDR and AnatEM by recipes/ner; int8 CTranslate2",
             "80f7dc44837d23c51bb9c18b5dbbe4b201c3b534e0c75a1d6b020f50c55013fe"),
)
SHIPPED_MODELS: Mapping[str, PinnedModel] = pinned_models("ner")
"""NER models shipped in the project folder. Keys are the names users type."""

DEFAULT_NER_MODEL = "medical-en"


def resolve_ner_model(name: str = DEFAULT_NER_MODEL) -> ModelFolder:
    """A model directory by path, or a shipped model by name (checksum verified)."""
    path = Path(name).expanduser()
    if path.is_dir():
        return ModelFolder(name, path, identifier(str(path.resolve()), weights_digest(path)))
    shipped = SHIPPED_MODELS.get(name)
    if shipped is None:
        known = ", ".join(sorted(SHIPPED_MODELS))
        raise ModelNotFoundError(name, [f"local path {path}: does not exist"],
                                 f"Pass a model directory (a recipes/ner export or its "
                                 f"CTranslate2 export) or a shipped model: {known}.")
    return resolve_pinned(shipped, hint="This checkout has no trained NER model yet: train one "
                                        "with recipes/ner and pass its directory with --model.")
