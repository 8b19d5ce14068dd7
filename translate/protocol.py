"""What the rest of medstream needs of a translator, whatever runs underneath.

A token-level backend (:class:`~translate.backends.base.MTBackend`: CTranslate2,
transformers) is driven by :class:`translate.translator.Translator`; an engine that gives only
text (:class:`~translate.backends.text_engine.TextEngine`: Bergamot) by
:class:`translate.engine_translator.EngineTranslator`. Both implement :class:`TextTranslator`,
which is what streaming, the command line and evaluation use; :func:`make_translator` builds
the right one for a loaded model (:func:`translate.catalog.load_mt`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from ner.types import Entity
from translate.backends.base import MTBackend
from translate.backends.text_engine import TextEngine
from translate.translator import Terminology, Translator
from translate.types import TermConstraint, TranslateOptions, Translation

MTModel = MTBackend | TextEngine
"""A loaded MT model: a token-level backend or a text engine."""


class TextTranslator(Protocol):
    """Translates texts under a session's terminology, reporting every term."""

    terminology: Terminology

    @property
    def identifier(self) -> str:
        """The model as reported in outputs and fingerprints."""
        ...

    def translate(self, texts: Sequence[str], src_lang: str, tgt_lang: str,
                  options: TranslateOptions | None = None,
                  terms: Sequence[Sequence[TermConstraint]] | None = None,
                  entities: Sequence[Sequence[Entity]] | None = None) -> list[Translation]:
        """One :class:`~translate.types.Translation` per text, in order (see
        :meth:`translate.translator.Translator.translate`)."""
        ...


def make_translator(model: MTModel, terminology: Terminology | None = None) -> TextTranslator:
    """The translator for a loaded model, with ``terminology`` (none by default)."""
    if isinstance(model, MTBackend):
        return Translator(model, terminology)
    from translate.engine_translator import EngineTranslator

    return EngineTranslator(model, terminology)
