"""Who spoke in a transcript (``transcribe --speakers``): diarization, words to speakers,
roles, and the dialogue marks on the entities.

A :class:`SpeakerStage` holds the diarizer (:mod:`speech.diarization`) and the role classifier
(:mod:`ner.roles`) for the whole batch. On one transcript it diarizes the recording's samples
(decoded once, for recognition), gives each word the speaker whose turn covers it and splits
segments where the speaker changes (:func:`speech.speakers.assign_speakers`), numbers the
speakers ``S1``, ``S2``, … in order of first appearance in the transcript, and decides each
speaker's role from what the speakers said, turn by turn. The segments change, so the
entities and translations of the transcript are made again after it (on the new segments).
The transcript keeps which recognised segment each piece came from, so that
:func:`without_speakers` can give the recogniser's segments back for another diarization.

:func:`mark_dialogue_turns` then marks the entities a clinician asked about and those a
patient's answer negated (:mod:`ner.dialogue`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Protocol

import numpy as np

from ner.dialogue import RULES_VERSION, DialogueTurn, mark_dialogue
from ner.roles import joined_turns
from speech.diarization import SpeakerTurn, load_diarizer
from speech.speakers import SENTENCE_RUN, assign_speakers_with_origins, joined_pieces
from speech.types import Segment
from streaming.document import (
    SpeakerAnnotations,
    SpeakerCount,
    SpeakerInfo,
    TranscriptDocument,
    settings_fingerprint,
)

if TYPE_CHECKING:
    from ner.roles import RoleGuess


class Diarizing(Protocol):
    """What the stage needs of a diarizer (:class:`speech.diarization.Diarizer`)."""

    identifier: str

    def settings(self) -> dict[str, object]: ...

    def diarize(self, audio: np.ndarray, speakers: int | None = None) -> list[SpeakerTurn]: ...


class RoleGuessing(Protocol):
    """What the stage needs of a role classifier (:class:`ner.roles.RoleClassifier`)."""

    identifier: str

    def speakers(self, turns: Sequence[tuple[str, str]]) -> dict[str, RoleGuess]: ...


def parse_speaker_count(value: str) -> SpeakerCount:
    """``--speakers``: ``auto`` or a count of at least 1 (raises ValueError otherwise)."""
    if value.strip().lower() == "auto":
        return "auto"
    try:
        count = int(value)
    except ValueError:
        count = 0
    if count < 1:
        raise ValueError(f"--speakers must be 'auto' or a number of speakers (1 or more), "
                         f"not {value!r}")
    return count


@dataclass(frozen=True)
class SpeakerSpec:
    """``transcribe --speakers``: how many speakers, and which role classifier."""

    count: SpeakerCount = "auto"
    roles_model: str = "roles-en"

    def build(self) -> SpeakerStage:
        """Load the diarizer (once per process) and the role classifier."""
        from ner.roles import RoleClassifier

        return SpeakerStage(load_diarizer(), RoleClassifier.load(self.roles_model), self.count)


class SpeakerStage:
    """Diarizes transcripts and names their speakers' roles, with one diarizer for the batch
    (which serialises its calls: its models are not known to be thread-safe)."""

    def __init__(self, diarizer: Diarizing, roles: RoleGuessing,
                 count: SpeakerCount = "auto") -> None:
        self.diarizer = diarizer
        self.roles = roles
        self.count = count
        self.model = f"{diarizer.identifier}; roles {roles.identifier}"
        self.fingerprint = settings_fingerprint(self.model, {
            "diarization": diarizer.settings(), "speakers": count,
            "sentence_run": SENTENCE_RUN})
        """Weights of both models, the diarizer's settings, the requested count and how words
        get their speakers (:data:`speech.speakers.SENTENCE_RUN`)."""

    def annotate(self, doc: TranscriptDocument, audio: np.ndarray) -> TranscriptDocument:
        """``doc`` split into one-speaker segments, with the speakers table; its entities and
        translations are dropped (they belonged to the segments before the split)."""
        if doc.speakers is not None:
            raise ValueError("the transcript has speakers already: diarize the recogniser's "
                             "segments (without_speakers)")
        turns = self.diarizer.diarize(audio, None if self.count == "auto" else self.count)
        # No turn (silence): nobody spoke, and the segments, if any, keep no speaker.
        assigned, origins = assign_speakers_with_origins(doc.segments, turns) if turns \
            else (list(doc.segments), list(range(len(doc.segments))))
        segments, turns = _numbered(assigned, turns)
        spoken = conversation_turns(segments)
        guesses = self.roles.speakers(spoken) if spoken else {}
        talk: dict[str, float] = {}
        for turn in turns:
            talk[turn.speaker] = talk.get(turn.speaker, 0.0) + turn.end - turn.start
        rows = tuple(SpeakerInfo(speaker, guesses[speaker].role if speaker in guesses else None,
                                 round(guesses[speaker].confidence, 4)
                                 if speaker in guesses else None,
                                 round(talk.get(speaker, 0.0), 2))
                     for speaker in _in_order(segments))
        return replace(doc, segments=tuple(segments), entities=None, translations=None,
                       speakers=SpeakerAnnotations(self.model, self.fingerprint, self.count,
                                                   rows, tuple(origins)))


def without_speakers(doc: TranscriptDocument) -> TranscriptDocument:
    """``doc`` as the recogniser gave it, before a diarization split it: the pieces of each
    recognised segment joined (:attr:`SpeakerAnnotations.origins`), no speakers, and no
    entities or translations (they belonged to the pieces). Raises ValueError for a
    transcript that does not say where its pieces came from (written before it was kept)."""
    if doc.speakers is None:
        return doc
    if doc.speakers.origins is None:
        raise ValueError("the transcript does not say which recognised segment each of its "
                         "pieces came from")
    segments = joined_pieces(doc.segments, doc.speakers.origins)
    return replace(doc, segments=tuple(segments), entities=None, translations=None,
                   speakers=None)


def _in_order(segments: Sequence[Segment]) -> list[str]:
    """The speakers of ``segments`` in order of first appearance."""
    return list(dict.fromkeys(s.speaker for s in segments if s.speaker is not None))


def _numbered(segments: Sequence[Segment], turns: Sequence[SpeakerTurn]
              ) -> tuple[list[Segment], list[SpeakerTurn]]:
    """Speakers renamed ``S1``, ``S2``, … in order of first appearance in the transcript, and
    the diarizer's turns of those speakers (a speaker to whom no word went is left out)."""
    names = {old: f"S{number}" for number, old in enumerate(_in_order(segments), start=1)}
    renamed = [replace(s, id=index, speaker=names[s.speaker] if s.speaker is not None else None)
               for index, s in enumerate(segments)]
    kept = [replace(t, speaker=names[t.speaker]) for t in turns if t.speaker in names]
    return renamed, kept


def conversation_turns(segments: Sequence[Segment]) -> list[tuple[str, str]]:
    """(speaker, text) of each turn: consecutive segments of one speaker joined (segments
    without a speaker or text left out)."""
    return joined_turns((s.speaker, s.text.strip()) for s in segments
                        if s.speaker is not None and s.text.strip())



def mark_dialogue_turns(doc: TranscriptDocument) -> TranscriptDocument:
    """``doc`` with its entities marked as asked (in a clinician's question) or negated by a
    patient's answer (``negated_by`` is the answer segment's id); unchanged without speakers
    or without entities."""
    if doc.speakers is None or doc.entities is None:
        return doc
    turns = [DialogueTurn(segment.id, doc.speakers.role_of(segment.speaker), segment.text,
                          tuple(found))
             for segment, found in zip(doc.segments, doc.entities.per_segment, strict=True)]
    marked = tuple(tuple(found) for found in mark_dialogue(turns))
    return replace(doc, entities=replace(doc.entities, per_segment=marked, fingerprint=(
        marked_fingerprint(doc.entities.fingerprint, doc.speakers.fingerprint))))


def marked_fingerprint(entities: str, speakers: str) -> str:
    """The fingerprint of entities marked by the dialogue: the recognizer's (``entities``),
    the speaker stage's and the dialogue rules' version, so that a change to any of them marks
    a finished transcript again."""
    return settings_fingerprint(entities, {"speakers": speakers, "dialogue": RULES_VERSION})
