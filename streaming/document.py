"""A transcribed recording as it is written to disk: source, decisions, settings and segments,
with the speakers, the entities and the translation of each segment when those stages ran."""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal, cast

from ner.types import Entity
from speech.types import Segment, TranscriptionInfo
from translate.types import Translation

TranslationMethod = Literal["text", "speech"]

SCHEMA = "medstream.transcript/1"


@dataclass(frozen=True)
class SourceFile:
    """The input recording, identified by content so a changed file is transcribed again."""

    path: str
    size: int
    sha256: str

    @classmethod
    def of(cls, path: Path) -> SourceFile:
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        return cls(path=str(path), size=path.stat().st_size, sha256=digest.hexdigest())


@dataclass(frozen=True)
class EntityAnnotations:
    """The medical entities of each segment, and which recognizer found them."""

    model: str
    """The tagger model as reported (name or path, with its weights' sha256)."""
    fingerprint: str
    """A digest of the recognizer (weights, term lists, rules): see ``ner.build``."""
    per_segment: tuple[tuple[Entity, ...], ...]
    """``per_segment[i]`` holds segment ``i``'s entities, offsets into its text."""


@dataclass(frozen=True)
class TranslationAnnotations:
    """The translation of each segment, and what made them."""

    language: str
    """The target language."""
    method: TranslationMethod
    """``text``: the segments' text through an MT model (glossary honoured as ``mode`` says);
    ``speech``: Whisper's own speech translation of each segment's audio (to English)."""
    model: str
    fingerprint: str
    """A digest of the model, glossaries and options: see ``streaming.translation``."""
    per_segment: tuple[Translation | None, ...]
    """None for a segment already in the target language."""


SpeakerCount = Literal["auto"] | int
"""``transcribe --speakers``: found by the diarizer, or at most this many."""


@dataclass(frozen=True)
class SpeakerInfo:
    """One speaker of a recording: ``S1``, ``S2``, … in order of first appearance."""

    id: str
    role: str | None
    """``clinician``, ``patient`` or ``other``; None when no role was decided."""
    confidence: float | None
    """The role classifier's confidence in ``role`` (0–1)."""
    talk_time: float
    """Seconds of the recording the diarizer gave this speaker."""


@dataclass(frozen=True)
class SpeakerAnnotations:
    """Who spoke: the diarizer and role classifier that decided it, and the speakers table.

    Each segment's ``speaker`` (:class:`speech.types.Segment`) names a row of ``speakers``;
    the segments were split where the speaker changes, so every segment has one speaker.
    """

    model: str
    """The diarizer and the role classifier as reported (names with their weights' sha256)."""
    fingerprint: str
    """A digest of the weights, the settings and ``requested``: see ``streaming.speakers``."""
    requested: SpeakerCount
    speakers: tuple[SpeakerInfo, ...]
    origins: tuple[int, ...] | None = None
    """For each segment, the index of the recogniser's segment it was cut from
    (:func:`speech.speakers.assign_speakers_with_origins`), so that another diarization can
    start from the recogniser's segments without recognising the audio again; None in
    transcripts written before it was kept."""

    def role_of(self, speaker: str | None) -> str | None:
        """The role of ``speaker`` (None for an unknown speaker or one without a role)."""
        return next((s.role for s in self.speakers if s.id == speaker), None)


@dataclass(frozen=True)
class TranscriptDocument:
    """Everything the json output carries; txt/srt/vtt are renderings of it."""

    source: SourceFile
    info: TranscriptionInfo
    segments: tuple[Segment, ...]
    fingerprint: str
    """A digest of every setting that changes the text (model weights included)."""
    entities: EntityAnnotations | None = None
    """Present when the transcript was run through NER (``transcribe --entities``)."""
    translations: TranslationAnnotations | None = None
    """Present when the segments were translated (``transcribe --translate-to``)."""
    speakers: SpeakerAnnotations | None = None
    """Present when the recording was diarized (``transcribe --speakers``)."""

    def __post_init__(self) -> None:
        if self.speakers is not None:
            known = {s.id for s in self.speakers.speakers}
            strays = sorted({s.speaker for s in self.segments if s.speaker is not None} - known)
            if strays:
                raise ValueError(f"segment speakers {strays} are not in the speakers table")
            origins = self.speakers.origins
            if origins is not None and (
                    len(origins) != len(self.segments) or origins[:1] not in ((), (0,))
                    or any(b - a not in (0, 1) for a, b in itertools.pairwise(origins))):
                raise ValueError("diarization origins must number the segments' sources "
                                 "0, 1, … in order, one per segment")
        if self.entities is not None and len(self.entities.per_segment) != len(self.segments):
            raise ValueError(f"{len(self.entities.per_segment)} entity lists for "
                             f"{len(self.segments)} segments")
        if (self.translations is not None
                and len(self.translations.per_segment) != len(self.segments)):
            raise ValueError(f"{len(self.translations.per_segment)} translations for "
                             f"{len(self.segments)} segments")

    @property
    def text(self) -> str:
        return " ".join(s.text for s in self.segments)

    def to_json(self) -> str:
        data: dict[str, Any] = {
            "schema": SCHEMA,
            "complete": True,
            "source": asdict(self.source),
            "model": self.info.model,
            "task": self.info.task,
            "language": self.info.language,
            "language_probability": self.info.language_probability,
            "duration": self.info.duration,
            "duration_after_vad": self.info.duration_after_vad,
            "settings": self.info.settings,
            "fingerprint": self.fingerprint,
            "text": self.text,
            "segments": [s.to_dict() for s in self.segments],
        }
        if self.entities is not None:
            data["ner"] = {"model": self.entities.model,
                           "fingerprint": self.entities.fingerprint}
            for segment, found in zip(data["segments"], self.entities.per_segment, strict=True):
                segment["entities"] = [entity.to_dict() for entity in found]
        if self.speakers is not None:
            data["diarization"] = {"model": self.speakers.model,
                                   "fingerprint": self.speakers.fingerprint,
                                   "speakers": self.speakers.requested}
            if self.speakers.origins is not None:
                data["diarization"]["origins"] = list(self.speakers.origins)
            data["speakers"] = [asdict(s) for s in self.speakers.speakers]
            for segment in data["segments"]:
                segment["role"] = self.speakers.role_of(segment["speaker"])
        if self.translations is not None:
            meta = self.translations
            data["translation"] = {"language": meta.language, "method": meta.method,
                                   "model": meta.model, "fingerprint": meta.fingerprint}
            for segment, translated in zip(data["segments"], meta.per_segment, strict=True):
                segment["translation"] = translated.to_dict() if translated else None
        return json.dumps(data, ensure_ascii=False, indent=1) + "\n"

    @classmethod
    def from_json(cls, text: str) -> TranscriptDocument:
        """Parse a json output; raises ValueError when it is not a complete transcript."""
        data = json.loads(text)
        if (not isinstance(data, dict) or data.get("schema") != SCHEMA
                or data.get("complete") is not True):
            raise ValueError("not a complete medstream transcript")
        info = TranscriptionInfo(
            language=data["language"],
            language_probability=data["language_probability"],
            duration=data["duration"],
            duration_after_vad=data["duration_after_vad"],
            task=data["task"],
            model=data["model"],
            settings=data["settings"],
        )
        segments = [dict(s) for s in data["segments"]]
        for segment in segments:
            segment.pop("role", None)  # the speakers table holds it
        found = [tuple(Entity.from_dict(e) for e in s.pop("entities", ())) for s in segments]
        translated = [s.pop("translation", None) for s in segments]
        translations = None
        if "translation" in data:
            meta = data["translation"]
            translations = TranslationAnnotations(
                language=meta["language"], method=meta["method"], model=meta["model"],
                fingerprint=meta["fingerprint"],
                per_segment=tuple(Translation.from_dict(t) if t else None for t in translated))
        entities = None
        if "ner" in data:
            entities = EntityAnnotations(model=data["ner"]["model"],
                                         fingerprint=data["ner"]["fingerprint"],
                                         per_segment=tuple(found))
        return cls(
            source=SourceFile(**data["source"]),
            info=info,
            segments=tuple(Segment.from_dict(s) for s in segments),
            fingerprint=data["fingerprint"],
            entities=entities,
            translations=translations,
            speakers=_speakers_from(data),
        )


def _speakers_from(data: dict[str, Any]) -> SpeakerAnnotations | None:
    if "diarization" not in data:
        return None
    meta = data["diarization"]
    requested = meta["speakers"]
    if requested != "auto" and (isinstance(requested, bool) or not isinstance(requested, int)):
        raise ValueError(f"diarization speakers must be 'auto' or a number, not {requested!r}")
    return SpeakerAnnotations(
        model=meta["model"], fingerprint=meta["fingerprint"],
        requested=cast(SpeakerCount, requested),
        speakers=tuple(SpeakerInfo(**row) for row in data["speakers"]),
        origins=tuple(int(i) for i in meta["origins"]) if "origins" in meta else None)


def settings_fingerprint(model_identifier: str, settings: dict[str, Any]) -> str:
    """Digest of the model and the transcription settings, stable across runs and machines."""
    payload = json.dumps({"model": model_identifier, "settings": settings}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


class TranscriptFolder:
    """The json transcripts under a folder (the batch job's output), found by the content of
    the recording they transcribe; files that are not transcripts are passed over."""

    def __init__(self, folder: Path) -> None:
        self.where = str(folder)
        self._by_digest: dict[str, TranscriptDocument] = {}
        for file in folder.rglob("*.json"):
            try:
                document = TranscriptDocument.from_json(file.read_text(encoding="utf-8"))
            except (ValueError, KeyError, OSError):
                continue
            self._by_digest[document.source.sha256] = document

    def find(self, audio: Path) -> tuple[str, str] | None:
        """The text of ``audio``'s transcript and the model that wrote it; None when none."""
        found = self._by_digest.get(SourceFile.of(audio).sha256)
        return (found.text, found.info.model) if found is not None else None
