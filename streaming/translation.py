"""The translation of each segment of a transcript (``transcribe --translate-to``).

Two ways, one interface (:class:`SegmentTranslator`):

* :class:`TextTranslation`, the cascade: each segment's text through an MT model, from the
  segment's language to the target, with the session's glossaries honoured in the chosen mode
  and the segment's entities (when NER ran) feeding the constraints;
* :class:`SpeechTranslation`: Whisper's own speech translation (``task="translate"``, to
  English only) of each segment's audio, cut at the segment's times so translations line up
  with the transcript one to one. Whisper cannot be constrained, so glossary terms are only
  checked and reported (mode ``none``).

A segment already in the target language gets no translation (None). Each stage has a
fingerprint of everything that decides its output; the batch job stores it and translates
again (without recognising the audio again) when it changes.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Sequence
from dataclasses import asdict, replace
from typing import Protocol

import numpy as np

from ner.folding import primary_language
from speech.audio import SAMPLE_RATE
from speech.backends.base import ASRBackend
from speech.options import TranscribeOptions
from streaming.document import TranscriptDocument, TranslationAnnotations, TranslationMethod
from translate.constraints import TermChecker
from translate.translator import Terminology, Translator
from translate.types import TermUse, TranslateOptions, Translation

AudioSource = Callable[[], np.ndarray]
"""Gives the recording's samples (16 kHz mono float32) when a stage needs them."""


class SegmentTranslator(Protocol):
    language: str
    method: TranslationMethod
    model: str
    fingerprint: str

    def translate(self, doc: TranscriptDocument, audio: AudioSource) -> TranslationAnnotations:
        """The translation of every segment of ``doc``."""
        ...


def _digest(payload: object) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest(
    )[:16]


def _needs_translation(segment_language: str, target: str) -> bool:
    return primary_language(segment_language) != primary_language(target)


class TextTranslation:
    """The cascade: segment text → MT with glossary constraints."""

    method: TranslationMethod = "text"

    def __init__(self, translator: Translator, language: str,
                 options: TranslateOptions | None = None, glossary_digest: str = "") -> None:
        """``glossary_digest``: a digest of the glossary files' content (for the fingerprint)."""
        self.translator = translator
        self.language = language
        self.options = options or TranslateOptions()
        self.model = translator.identifier
        self.fingerprint = _digest({"method": "text", "model": self.model, "to": language,
                                    "options": asdict(self.options),
                                    "glossary": glossary_digest,
                                    "numbers": translator.terminology.numbers})
        # The tokenizer keeps the source language as state: one translation at a time.
        self._lock = threading.Lock()

    def translate(self, doc: TranscriptDocument, audio: AudioSource) -> TranslationAnnotations:
        results: list[Translation | None] = [None] * len(doc.segments)
        groups: dict[str, list[int]] = {}
        for index, segment in enumerate(doc.segments):
            language = segment.language or doc.info.language
            if segment.text.strip() and _needs_translation(language, self.language):
                groups.setdefault(language, []).append(index)
        entities = doc.entities.per_segment if doc.entities is not None else None
        with self._lock:
            for language, indices in groups.items():
                texts = [doc.segments[i].text for i in indices]
                found = self.translator.translate(
                    texts, language, self.language, self.options,
                    entities=[entities[i] for i in indices] if entities is not None else None)
                for index, translation in zip(indices, found, strict=True):
                    results[index] = translation
        return TranslationAnnotations(self.language, "text", self.model, self.fingerprint,
                                      tuple(results))


class SpeechTranslation:
    """Whisper's speech translation of each segment's audio, to English."""

    language = "en"
    method: TranslationMethod = "speech"

    def __init__(self, backend: ASRBackend, options: TranscribeOptions,
                 terminology: Terminology | None = None, glossary_digest: str = "") -> None:
        """``options``: the transcription's (beam size, prompt …); the task becomes translate.
        ``terminology``: glossaries and numbers to check (never enforced)."""
        self.backend = backend
        self.options = replace(options, task="translate", vad_filter=False,
                               condition_on_previous_text=False, batch_size=1)
        self.terminology = terminology
        self.model = f"{backend.identifier} (task=translate)"
        self.fingerprint = _digest({"method": "speech", "model": backend.reproducibility_key,
                                    "options": self.options.to_dict(),
                                    "glossary": glossary_digest})

    def translate(self, doc: TranscriptDocument, audio: AudioSource) -> TranslationAnnotations:
        results: list[Translation | None] = [None] * len(doc.segments)
        samples: np.ndarray | None = None
        for index, segment in enumerate(doc.segments):
            language = segment.language or doc.info.language
            if not segment.text.strip() or not _needs_translation(language, self.language):
                continue
            if samples is None:
                samples = audio()
            clip = samples[int(segment.start * SAMPLE_RATE):int(segment.end * SAMPLE_RATE)]
            options = replace(self.options, language=language)
            pieces, _ = self.backend.transcribe(clip, options)
            text = " ".join(p.text.strip() for p in pieces if p.text.strip())
            results[index] = Translation(text, segment.text, language, self.language,
                                         self._terms(segment.text, text, language), "none")
        return TranslationAnnotations(self.language, "speech", self.model, self.fingerprint,
                                      tuple(results))

    def _terms(self, source: str, output: str, language: str) -> tuple[TermUse, ...]:
        if self.terminology is None:
            return ()
        checker = TermChecker(self.language)
        return tuple(TermUse(c.source, c.target, checker.satisfied(output, c.target),
                             checker.lenient(output, c.target), origin=c.origin, code=c.code,
                             do_not_translate=c.do_not_translate)
                     for c in self.terminology.constraints(source, language, self.language))


def glossary_digest(contents: Sequence[bytes]) -> str:
    """A digest of glossary files' bytes, in order."""
    digest = hashlib.sha256()
    for content in contents:
        digest.update(hashlib.sha256(content).digest())
    return digest.hexdigest()[:16]
