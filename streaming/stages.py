"""What a batch job loads, written down as data: the recogniser, the speaker stage, the entity
recognizer and the translation stage. The local mode builds them once in this process;
``--ray`` sends the spec to each actor, which builds its own (one model per actor).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from ner.build import RecognizerSpec
from ner.folding import primary_language
from speech.backends.base import ASRBackend
from speech.backends.faster_whisper import resolve_device
from speech.errors import InvalidOptionError
from speech.loader import load_asr
from speech.options import Device, ModelOptions, TranscribeOptions
from streaming.annotate import EntityAnnotator
from streaming.enrich import SegmentTranslator, TranslationTarget
from streaming.speakers import SpeakerSpec, SpeakerStage
from streaming.translation import SpeechTranslation, TextTranslation, glossary_digest
from translate.catalog import load_mt_model
from translate.defaults import (
    PACKAGED_DIRECTIONS,
    PACKAGED_NAME,
    packaged_directions,
    packaged_directions_into,
)
from translate.glossary import read_glossary
from translate.protocol import make_translator
from translate.translator import Terminology
from translate.types import TermMode, TranslateOptions


@dataclass(frozen=True)
class TranslationSpec:
    """``transcribe --translate-to``: the cascade through ``mt_model`` when one is given, else
    through the packaged pair where it applies (:meth:`packaged_default`), else Whisper's
    speech translation (into English only)."""

    language: str
    mt_model: str | None = None
    glossaries: tuple[Path, ...] = ()
    terms: TermMode = "hard"
    parties: tuple[str, str] | None = None
    """``--translate-to other`` with ``--languages A,B`` (a bilingual recording): each
    segment goes into the other party's language, as the live interpreter's finals do."""

    @property
    def target(self) -> TranslationTarget:
        return (TranslationTarget(parties=self.parties) if self.parties is not None
                else TranslationTarget(self.language))

    def packaged_default(self, spoken: str | None) -> str | None:
        """The packaged MT pair when no ``--mt-model`` is named and it translates what is
        spoken into the target: into Portuguese always (from English), into English when the
        speech is declared Portuguese (``--language pt``: the cascade scored chrF +14 over
        Whisper's speech translation, benchmarks/pt_speech_translation.py). None: Whisper's
        speech translation (into English from any language, and for auto-detected speech)."""
        if self.parties is not None:  # both ways between the parties
            return PACKAGED_NAME if len(packaged_directions(self.parties)) == 2 else None
        target = primary_language(self.language)
        directions = packaged_directions_into(target)
        if spoken is not None:
            directions = [d for d in directions if d[0] == primary_language(spoken)]
        elif target == "en":
            return None
        if not directions:
            return None
        return PACKAGED_DIRECTIONS[directions[0]].name if len(directions) == 1 else PACKAGED_NAME

    def build(self, backend: ASRBackend | None, options: TranscribeOptions, device: str,
              allow_download: bool) -> SegmentTranslator:
        """Load the stage; speech translation needs the ``backend`` that recognises."""
        terminology = Terminology([e for path in self.glossaries for e in read_glossary(path)])
        digest = glossary_digest([path.read_bytes() for path in self.glossaries])
        mt_model = self.mt_model or self.packaged_default(options.language)
        if mt_model is not None:
            mt = load_mt_model(mt_model, device=device, allow_download=allow_download)
            return TextTranslation(make_translator(mt, terminology), self.target,
                                   TranslateOptions(terms=self.terms), digest)
        if self.parties is not None:
            raise InvalidOptionError(
                "--translate-to other translates between the --languages with a text MT model "
                f"(--mt-model); the packaged pair ({PACKAGED_NAME}) translates between English "
                "and Portuguese")
        if primary_language(self.language) != "en":
            raise InvalidOptionError(
                f"--translate-to {self.language} needs a text MT model (--mt-model): Whisper "
                "translates speech into English only, and the packaged MT pair "
                f"({PACKAGED_NAME}) translates between English and Portuguese")
        assert backend is not None, "speech translation needs the recogniser"
        backend.check(replace(options, task="translate"))
        return SpeechTranslation(backend, options, terminology, digest)


@dataclass(frozen=True)
class PipelineSpec:
    """Every model a batch job needs, and how to load them."""

    model: str
    model_options: ModelOptions
    options: TranscribeOptions
    entities: RecognizerSpec | None = None
    translation: TranslationSpec | None = None
    allow_download: bool = True
    speakers: SpeakerSpec | None = None

    @property
    def device(self) -> str:
        return resolve_device(self.model_options.device)

    def on(self, device: Device, workers: int = 1, cpu_threads: int = 0) -> PipelineSpec:
        """The same pipeline on another device (a Ray actor's), with its own threading."""
        entities = replace(self.entities, device=resolve_device(device)) \
            if self.entities is not None else None
        options = replace(self.model_options, device=device, workers=workers,
                          cpu_threads=cpu_threads)
        return replace(self, model_options=options, entities=entities)

    def load_backend(self) -> ASRBackend:
        """The recogniser, checked against the options (raises MedstreamError)."""
        backend: ASRBackend = load_asr(self.model, self.model_options,
                                       allow_download=self.allow_download)
        backend.check(self.options)
        return backend

    def load_annotator(self) -> EntityAnnotator | None:
        return EntityAnnotator.from_spec(self.entities) if self.entities is not None else None

    def load(self) -> tuple[ASRBackend, EntityAnnotator | None, SegmentTranslator | None]:
        """Every model of the batch: recogniser, entity recognizer, translation stage."""
        backend = self.load_backend()
        return backend, self.load_annotator(), self.load_translator(backend)

    def load_speakers(self) -> SpeakerStage | None:
        """The diarizer and role classifier (``--speakers``), or None."""
        return self.speakers.build() if self.speakers is not None else None

    def load_translator(self, backend: ASRBackend | None) -> SegmentTranslator | None:
        if self.translation is None:
            return None
        return self.translation.build(backend, self.options, self.device, self.allow_download)
