"""Who said each final of a live session, decided as the session goes.

A single-language session tells speakers apart by voice: each final's audio (kept by
:class:`SessionAudio` until its final is out) goes to the session's
:class:`SpeakerAssigner` (:class:`speech.speakers.OnlineSpeakers`: the closest of the
speakers so far by embedding, or a new one), and each speaker's role comes from a
:class:`RoleModel` (:class:`ner.roles.RoleClassifier`) over everything said so far. A speaker's
role can change as the conversation goes on; :class:`LiveSpeakers` says which earlier finals
that changes, so the engine can send them ``update`` events (the protocol never rewrites
text). In interpreter mode the two parties' languages say who is who
(:func:`ner.roles.roles_from_languages`).

Everything here runs on the engine's enrichment thread, one final of a session after another,
off the event loop and outside the scheduler's lock: the embedding is the costly part.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from ner.folding import primary_language
from ner.roles import (
    DEFAULT_ROLES_MODEL,
    Role,
    RoleClassifier,
    RoleGuess,
    joined_turns,
    roles_from_languages,
)
from speech.audio import SAMPLE_RATE

KEEP_SECONDS = 60.0
"""Audio a session keeps for finals still to come (3.8 MB): the longest utterance (25 s, with
a second before its onset) and over 30 s of backlog. A final whose audio is older than that
when it comes gets no speaker."""

MIN_VOICE_SECONDS = 0.3
"""The first final of a session shorter than this gets no speaker: too little voice to embed."""
SHORT_VOICE_SECONDS = 1.0
"""A later final shorter than this ("No.", "Okay.") is not embedded: its embedding is as close
to the other voice as to its own, or makes a speaker of its own (measured: the three "No."
answers of mts_valid_1 made a third speaker, or went to the clinician with at most two). It is
given to the other party of the last exchange instead: the speaker before the previous
final's (a short answer answers; a short "Okay." acknowledges)."""
MAX_VOICE_SECONDS = 4.5
"""The speaker of a longer final is told from the middle 4.5 s of it: the embedding's cost
grows with the audio (a CAM++ window every 0.6 s), and 4.5 s tell a voice."""


class SpeakerAssigner(Protocol):
    """The speakers of one session by voice (:class:`speech.speakers.OnlineSpeakers`)."""

    def assign(self, audio: np.ndarray) -> tuple[str, float]:
        """The speaker of ``audio`` (16 kHz mono float32), and its similarity to them."""
        ...


class RoleModel(Protocol):
    """Roles of a conversation's speakers from what they said
    (:class:`ner.roles.RoleClassifier`)."""

    @property
    def identifier(self) -> str: ...

    def speakers(self, turns: Sequence[tuple[str, str]]) -> Mapping[str, RoleGuess]:
        """A role for each speaker of the (speaker, text) turns, in conversation order."""
        ...


@dataclass(frozen=True)
class SpeakerModels:
    """A server's means to tell speakers apart by voice and give them roles."""

    identifier: str
    """Names the speaker model and the role model (``ready.speakers``)."""
    session: Callable[[int | None], SpeakerAssigner]
    """A fresh assigner for a session, allowing at most N speakers (None: any number)."""
    roles: RoleModel


def load_speaker_models(roles_model: str = DEFAULT_ROLES_MODEL) -> SpeakerModels:
    """The pinned speaker embedding model (:func:`speech.diarization.load_diarizer`, loaded
    once per process) and the role model ``roles_model`` (a shipped name or a
    ``recipes/roles`` output)."""
    from speech.diarization import load_diarizer
    from speech.speakers import OnlineSpeakers

    diarizer = load_diarizer()
    roles = RoleClassifier.load(roles_model)
    return SpeakerModels(f"{diarizer.identifier}; roles {roles.identifier}",
                         lambda most: OnlineSpeakers(diarizer, max_speakers=most), roles)


@dataclass(frozen=True)
class Attribution:
    """Who said a final, as the client was told."""

    speaker: str | None
    role: Role | None


NOBODY = Attribution(None, None)


class LiveSpeakers:
    """The speakers of one session's finals (used by one thread, final after final).

    By voice: ``assigner`` and ``roles``; in interpreter mode: ``parties``, the clinician's
    and the patient's language."""

    def __init__(self, assigner: SpeakerAssigner | None = None, roles: RoleModel | None = None,
                 parties: tuple[str, str] | None = None) -> None:
        if (parties is None) == (assigner is None or roles is None):
            raise ValueError("speakers come from a voice assigner and a role model, or from "
                             "the parties' languages")
        self.assigner = assigner
        self.roles = roles
        self.parties = parties
        self._turns: list[tuple[int, str, str]] = []
        """(final, speaker, text) of every final with a speaker, in order."""
        self._told: dict[int, Attribution] = {}
        """What each final's client was last told."""
        self._languages: dict[str, str] = {}
        """Interpreter mode: the speaker id of each party's (primary) language."""

    @property
    def by_voice(self) -> bool:
        return self.parties is None

    def told(self, final: int) -> Attribution:
        """What the client was last told about final ``final``."""
        return self._told[final]

    def add(self, final: int, text: str, language: str, audio: np.ndarray | None
            ) -> tuple[Attribution, dict[int, Attribution]]:
        """Who said final ``final`` (its text, language and audio; audio None: lost), and the
        earlier finals whose attribution this changes, with their new one."""
        speaker = self._speaker(language, audio)
        if speaker is None:
            self._told[final] = NOBODY
            return NOBODY, {}
        self._turns.append((final, speaker, text))
        roles = self._roles()
        changed: dict[int, Attribution] = {}
        for earlier, who, _ in self._turns[:-1]:
            now = Attribution(who, roles.get(who))
            if self._told[earlier] != now:
                self._told[earlier] = changed[earlier] = now
        attribution = Attribution(speaker, roles.get(speaker))
        self._told[final] = attribution
        return attribution, changed

    def _speaker(self, language: str, audio: np.ndarray | None) -> str | None:
        if self.parties is None:
            assert self.assigner is not None
            if audio is None:
                return None
            if len(audio) < SHORT_VOICE_SECONDS * SAMPLE_RATE and self._turns:
                return self._other_party()
            if len(audio) < MIN_VOICE_SECONDS * SAMPLE_RATE:
                return None
            return self.assigner.assign(_middle(audio, MAX_VOICE_SECONDS))[0]
        party = primary_language(language)
        if party not in {primary_language(p) for p in self.parties}:
            return None
        return self._languages.setdefault(party, f"S{len(self._languages) + 1}")

    def _other_party(self) -> str:
        """The speaker before the previous final's (the previous one's while there is only
        one speaker)."""
        last = self._turns[-1][1]
        for _, speaker, _ in reversed(self._turns):
            if speaker != last:
                return speaker
        return last

    def _roles(self) -> dict[str, Role]:
        guesses: Mapping[str, RoleGuess]
        if self.parties is not None:
            clinician, patient = self.parties
            guesses = roles_from_languages(
                {speaker: language for language, speaker in self._languages.items()},
                primary_language(clinician), primary_language(patient))
        else:
            assert self.roles is not None
            guesses = self.roles.speakers(self._conversation())
        return {speaker: guess.role for speaker, guess in guesses.items()}


    def _conversation(self) -> list[tuple[str, str]]:
        """(speaker, text) turns so far: consecutive finals of one speaker joined, as a
        transcript's turns are (:func:`ner.roles.joined_turns`)."""
        return joined_turns((speaker, text) for _, speaker, text in self._turns)


def _middle(audio: np.ndarray, seconds: float) -> np.ndarray:
    """The middle ``seconds`` of ``audio`` (all of it when shorter)."""
    keep = round(seconds * SAMPLE_RATE)
    skip = max(0, (len(audio) - keep) // 2)
    return audio[skip: skip + keep]


class SessionAudio:
    """A session's recent audio on its clock (16 kHz samples since the start), from which
    each final takes its stretch. Thread-safe: the server adds audio while the scheduler
    takes finals'."""

    def __init__(self, keep_seconds: float = KEEP_SECONDS) -> None:
        self.keep = round(keep_seconds * SAMPLE_RATE)
        self._chunks: deque[np.ndarray] = deque()
        self._first = 0
        """Clock of the first sample kept."""
        self._samples = 0
        self._lock = threading.Lock()

    def append(self, samples: np.ndarray) -> None:
        with self._lock:
            self._chunks.append(np.asarray(samples, np.float32).reshape(-1))
            self._samples += len(self._chunks[-1])
            while self._chunks and self._samples - len(self._chunks[0]) >= self.keep:
                self._drop_first()

    def take(self, start: float, end: float) -> np.ndarray | None:
        """The audio from ``start`` to ``end`` (seconds on the session clock), or None when
        it is gone (over ``keep_seconds`` old); everything before ``end`` is then forgotten
        (finals come in order)."""
        first, last = round(start * SAMPLE_RATE), round(end * SAMPLE_RATE)
        with self._lock:
            stretch = None
            if first >= self._first and last > first:
                pieces, at = [], self._first
                for chunk in self._chunks:
                    if at >= last:
                        break
                    if at + len(chunk) > first:
                        pieces.append(chunk[max(0, first - at): last - at])
                    at += len(chunk)
                stretch = np.concatenate(pieces) if pieces else None
            while self._chunks and self._first + len(self._chunks[0]) <= last:
                self._drop_first()
            return stretch

    def _drop_first(self) -> None:
        dropped = self._chunks.popleft()
        self._first += len(dropped)
        self._samples -= len(dropped)

    @property
    def seconds(self) -> float:
        """Audio kept."""
        return self._samples / SAMPLE_RATE
