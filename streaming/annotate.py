"""Medical entities for the segments of a transcript (``transcribe --entities``).

An :class:`EntityAnnotator` holds one recognizer (``ner.build``) for the whole batch. Each
segment is tagged in its own language (the segment's, else the recording's); segments of one
language go to the recognizer as one batch, in order, with one abbreviation memory: an
abbreviation defined in a segment applies to the later ones (:mod:`ner.abbreviations`). Calls
are serialised: the tokenizer of the tagger is not safe to share between threads, and tagging a
transcript takes a fraction of the time its recognition took.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from ner.abbreviations import AbbreviationMemory
from ner.build import RecognizerSpec
from ner.recognizer import EntityRecognizer
from ner.types import Entity
from speech.types import Segment
from streaming.document import EntityAnnotations


class EntityAnnotator:
    """Tags the segments of transcripts with one recognizer."""

    def __init__(self, recognizer: EntityRecognizer, model: str, fingerprint: str) -> None:
        self.recognizer = recognizer
        self.model = model
        self.fingerprint = fingerprint
        self._lock = threading.Lock()

    @classmethod
    def from_spec(cls, spec: RecognizerSpec) -> EntityAnnotator:
        """Load the recognizer a spec describes (raises MedstreamError when it cannot)."""
        return cls(spec.build(), spec.identifier, spec.fingerprint())

    def annotate(self, segments: Sequence[Segment], language: str,
                 memory: AbbreviationMemory | None = None) -> EntityAnnotations:
        """The entities of every segment; ``language`` is the recording's. ``memory`` holds
        the abbreviations of earlier calls for the same conversation (a live session); without
        it the segments are a whole transcript."""
        by_language: dict[str, list[int]] = {}
        for index, segment in enumerate(segments):
            by_language.setdefault(segment.language or language, []).append(index)
        found: list[tuple[Entity, ...]] = [() for _ in segments]
        with self._lock:
            for code, indices in by_language.items():
                texts = [segments[i].text for i in indices]
                found_here = self.recognizer.recognize(texts, code,
                                                       memory or AbbreviationMemory())
                for index, entities in zip(indices, found_here, strict=True):
                    found[index] = tuple(entities)
        return EntityAnnotations(self.model, self.fingerprint, tuple(found))
