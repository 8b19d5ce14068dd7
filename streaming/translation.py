"""The translators of the enrichment stage (:class:`streaming.enrich.SegmentTranslator`).

Two ways, one interface:

* :class:`TextTranslation`, the cascade: each segment's text through an MT model, from the
  segment's language to its target, with the session's glossaries honoured in the chosen mode
  and the segment's entities (when NER ran) feeding the constraints; a segment the model fails
  on gets an error note instead of a translation, and the others are translated all the same;
* :class:`SpeechTranslation`: Whisper's own speech translation (``task="translate"``, to
  English only) of each segment's audio, cut at the segment's times so translations line up
  with the transcript one to one. Whisper cannot be constrained, so glossary terms are only
  checked and reported (mode ``none``).

Which segments are translated, and into what, the stage decides
(:class:`streaming.enrich.TranslationTarget`). Each translator has a fingerprint of everything
that decides its output; the batch job stores it and translates again (without recognising the
audio again) when it changes.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Sequence
from dataclasses import asdict, replace

import numpy as np

from speech.audio import SAMPLE_RATE
from speech.backends.base import ASRBackend
from speech.options import TranscribeOptions
from streaming.document import TranslationMethod
from streaming.enrich import AudioSource, SegmentToTranslate, TranslationTarget
from translate.constraints import TermChecker
from translate.failures import each_or_failure, failure_message
from translate.protocol import TextTranslator
from translate.translator import Terminology
from translate.types import TermUse, TranslateOptions, Translation


def _digest(payload: object) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest(
    )[:16]


class TextTranslation:
    """The cascade: segment text → MT with glossary constraints."""

    method: TranslationMethod = "text"

    def __init__(self, translator: TextTranslator, target: TranslationTarget,
                 options: TranslateOptions | None = None, glossary_digest: str = "") -> None:
        """``glossary_digest``: a digest of the glossary files' content (for the fingerprint)."""
        self.translator = translator
        self.target = target
        self.options = options or TranslateOptions()
        self.model = translator.identifier
        self.fingerprint = _digest({"method": "text", "model": self.model, "to": str(target),
                                    "options": asdict(self.options),
                                    "glossary": glossary_digest,
                                    "numbers": translator.terminology.numbers})
        # The tokenizer keeps the source language as state: one translation at a time.
        self._lock = threading.Lock()

    def translate(self, segments: Sequence[SegmentToTranslate],
                  audio: AudioSource | None) -> list[Translation]:
        """Segments of one language and target go to the model together, in order. A segment
        the model fails on gets :meth:`Translation.failed` (an error note, no text) and the
        others are still translated (:func:`translate.failures.each_or_failure`)."""
        results: dict[int, Translation] = {}
        groups: dict[tuple[str, str], list[int]] = {}
        for index, request in enumerate(segments):
            groups.setdefault((request.language, request.target), []).append(index)
        with self._lock:
            for (language, target), indices in groups.items():
                def run(batch: Sequence[int], language: str = language,
                        target: str = target) -> list[Translation]:
                    return self.translator.translate(
                        [segments[i].segment.text for i in batch], language, target,
                        self.options, entities=[segments[i].entities for i in batch])

                for index, found in zip(indices, each_or_failure(indices, run), strict=True):
                    results[index] = found if not isinstance(found, Exception) else \
                        Translation.failed(segments[index].segment.text, language, target,
                                           self.options.terms, failure_message(found))
        return [results[index] for index in range(len(segments))]


class SpeechTranslation:
    """Whisper's speech translation of each segment's audio, to English."""

    target = TranslationTarget("en")
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

    def translate(self, segments: Sequence[SegmentToTranslate],
                  audio: AudioSource | None) -> list[Translation]:
        """Each segment's audio, cut from the recording at its times, in its own call (one
        that fails leaves an error note, :meth:`Translation.failed`)."""
        if not segments:
            return []
        if audio is None:
            raise ValueError("speech translation needs the recording")
        samples = audio()
        results: list[Translation] = []
        for request in segments:
            (found,) = each_or_failure([request], lambda batch: [self._one(batch[0], samples)])
            results.append(found if not isinstance(found, Exception) else Translation.failed(
                request.segment.text, request.language, request.target, "none",
                failure_message(found)))
        return results

    def _one(self, request: SegmentToTranslate, samples: np.ndarray) -> Translation:
        segment, language = request.segment, request.language
        clip = samples[int(segment.start * SAMPLE_RATE):int(segment.end * SAMPLE_RATE)]
        options = replace(self.options, language=language)
        pieces, _ = self.backend.transcribe(clip, options)
        text = " ".join(p.text.strip() for p in pieces if p.text.strip())
        return Translation(text, segment.text, language, request.target,
                           self._terms(segment.text, text, language, request.target), "none")

    def _terms(self, source: str, output: str, language: str,
               target: str) -> tuple[TermUse, ...]:
        if self.terminology is None:
            return ()
        checker = TermChecker(target)
        return tuple(TermUse(c.source, c.target, checker.satisfied(output, c.target),
                             checker.lenient(output, c.target), origin=c.origin, code=c.code,
                             do_not_translate=c.do_not_translate)
                     for c in self.terminology.constraints(source, language, target))


def glossary_digest(contents: Sequence[bytes]) -> str:
    """A digest of glossary files' bytes, in order."""
    digest = hashlib.sha256()
    for content in contents:
        digest.update(hashlib.sha256(content).digest())
    return digest.hexdigest()[:16]
