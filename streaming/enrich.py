"""Entities and translations of recognised segments: one stage for batch and live.

A :class:`SegmentEnrichment` holds the entity annotator (:mod:`streaming.annotate`) and the
translator (a :class:`SegmentTranslator`: the implementations are in
:mod:`streaming.translation`). The batch job runs it on each transcript
(``FileStages.annotate`` and ``FileStages.translate``, locally and on Ray), the live engine on
each final of a session, with the session's abbreviation memory.

Which segments are translated, and into what, is decided in one place
(:meth:`TranslationTarget.of`): into a fixed language (``transcribe --translate-to``, a live
session's ``translate_to``) unless a segment is in it already, or in interpreter mode into the
other party's language. Segments without text are never translated.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Protocol

import numpy as np

from ner.folding import primary_language
from ner.types import Entity
from speech.types import Segment
from streaming.document import (
    EntityAnnotations,
    TranscriptDocument,
    TranslationAnnotations,
    TranslationMethod,
)
from translate.types import Translation

if TYPE_CHECKING:
    from ner.abbreviations import AbbreviationMemory
    from streaming.annotate import EntityAnnotator

AudioSource = Callable[[], np.ndarray]
"""Gives the recording's samples (16 kHz mono float32) when a translator needs them."""


@dataclass(frozen=True)
class TranslationTarget:
    """Where segments are translated to."""

    language: str | None = None
    """A fixed target: a segment already in it (same primary language) is not translated."""
    parties: tuple[str, str] | None = None
    """Interpreter mode: the two parties' languages. A segment in the first party's language
    goes into the second's; any other into the first's."""

    def __post_init__(self) -> None:
        if self.language is not None and self.parties is not None:
            raise ValueError("a translation goes into one language or between two parties, "
                             "not both")

    def of(self, language: str) -> str | None:
        """The language a segment in ``language`` is translated into (None: not translated)."""
        if self.parties is not None:
            first, second = self.parties
            return second if primary_language(language) == primary_language(first) else first
        if self.language is None or primary_language(self.language) == primary_language(
                language):
            return None
        return self.language

    def __str__(self) -> str:
        """The target language, or both parties' (``en↔de``)."""
        if self.parties is not None:
            return "↔".join(self.parties)
        return self.language or ""


@dataclass(frozen=True)
class SegmentToTranslate:
    """One segment a translator is asked to translate."""

    segment: Segment
    language: str
    """The segment's language (else the recording's)."""
    target: str
    entities: tuple[Entity, ...] = ()
    """The segment's entities, when they were recognised (they add constraints)."""


class SegmentTranslator(Protocol):
    """How segments are translated (:mod:`streaming.translation`)."""

    target: TranslationTarget
    method: TranslationMethod
    model: str
    fingerprint: str
    """A digest of everything that decides the translations (the batch job stores it)."""

    def translate(self, segments: Sequence[SegmentToTranslate],
                  audio: AudioSource | None) -> list[Translation]:
        """One translation per segment, in order. ``audio``: the recording, for a translator
        that translates speech (None where there is none, as in a live session)."""
        ...


@dataclass(frozen=True)
class EnrichedSegment:
    """What the stage added to one segment."""

    entities: tuple[Entity, ...] | None
    """None when entities were not asked for."""
    translation: Translation | None
    """None when not asked for, or when the segment is not translated."""


class SegmentEnrichment:
    """Annotates and translates segments (the entities feed the translation's constraints)."""

    def __init__(self, annotator: EntityAnnotator | None = None,
                 translator: SegmentTranslator | None = None) -> None:
        self.annotator = annotator
        self.translator = translator

    @property
    def active(self) -> bool:
        """Something is added to the segments."""
        return self.annotator is not None or self.translator is not None

    def annotate(self, segments: Sequence[Segment], language: str,
                 memory: AbbreviationMemory | None = None) -> EntityAnnotations | None:
        """The entities of every segment (None without an annotator). ``language``: the
        recording's; ``memory``: the abbreviations of the conversation's earlier segments."""
        if self.annotator is None:
            return None
        return self.annotator.annotate(segments, language, memory)

    def translate(self, segments: Sequence[Segment], language: str,
                  entities: Sequence[Sequence[Entity]] | None = None,
                  audio: AudioSource | None = None) -> tuple[Translation | None, ...] | None:
        """The translation of every segment (None for one not translated; None without a
        translator). ``entities[i]``: segment ``i``'s, when they were recognised."""
        if self.translator is None:
            return None
        return _translations(self.translator, segments, language, entities, audio)

    def enrich(self, segments: Sequence[Segment], language: str,
               memory: AbbreviationMemory | None = None,
               audio: AudioSource | None = None) -> list[EnrichedSegment]:
        """Entities, then translation, of each segment (a live session's finals)."""
        entities = self.annotate(segments, language, memory)
        found = entities.per_segment if entities is not None else None
        translations = self.translate(segments, language, found, audio)
        return [EnrichedSegment(found[i] if found is not None else None,
                                translations[i] if translations is not None else None)
                for i in range(len(segments))]

    # -- whole transcripts (the batch job) ---------------------------------------------------
    def annotate_document(self, doc: TranscriptDocument) -> TranscriptDocument:
        """``doc`` with the entities of this stage (none without an annotator)."""
        return replace(doc, entities=self.annotate(doc.segments, doc.info.language))

    def translate_document(self, doc: TranscriptDocument,
                           audio: AudioSource | None) -> TranscriptDocument:
        """``doc`` with the translations of this stage (none without a translator), made with
        the entities ``doc`` carries."""
        translator = self.translator
        if translator is None:
            return replace(doc, translations=None)
        translated = _translations(
            translator, doc.segments, doc.info.language,
            doc.entities.per_segment if doc.entities is not None else None, audio)
        return replace(doc, translations=TranslationAnnotations(
            str(translator.target), translator.method, translator.model, translator.fingerprint,
            translated))


def _translations(translator: SegmentTranslator, segments: Sequence[Segment], language: str,
                  entities: Sequence[Sequence[Entity]] | None,
                  audio: AudioSource | None) -> tuple[Translation | None, ...]:
    """What :meth:`SegmentEnrichment.translate` says: the segments with text whose language
    :meth:`TranslationTarget.of` sends somewhere go to ``translator``, in order."""
    wanted: list[int] = []
    requests: list[SegmentToTranslate] = []
    for index, segment in enumerate(segments):
        source = segment.language or language
        target = translator.target.of(source)
        if target is None or not segment.text.strip():
            continue
        wanted.append(index)
        requests.append(SegmentToTranslate(
            segment, source, target, tuple(entities[index]) if entities is not None else ()))
    results: list[Translation | None] = [None] * len(segments)
    translated = translator.translate(requests, audio) if requests else []
    for index, translation in zip(wanted, translated, strict=True):
        results[index] = translation
    return tuple(results)
