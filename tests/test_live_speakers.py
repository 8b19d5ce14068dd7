"""Speakers and roles of live finals: the session's audio, speakers by voice or language,
roles that change and the updates they cause, dialogue marks, and the engine around them
(with a scripted recogniser and an embedder that returns given vectors: no model)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from ner.lexicon import builtin_lexicon
from ner.recognizer import EntityRecognizer, LexiconRecognizer
from ner.roles import RoleGuess
from ner.types import Entity
from speech.audio import SAMPLE_RATE, load_audio
from speech.online import DecodeJob, OnlineTranscriber, StreamOptions, WindowResult
from speech.speakers import OnlineSpeakers
from speech.types import Segment, Word
from streaming.annotate import EntityAnnotator
from streaming.live.dialogue import LiveDialogue
from streaming.live.engine import Engine, Stages
from streaming.live.pcm import encode_pcm
from streaming.live.protocol import (
    CLIENT_MESSAGE,
    Error,
    Final,
    Message,
    Ready,
    Start,
    Update,
    encode,
    schemas,
)
from streaming.live.speakers import (
    MAX_VOICE_SECONDS,
    NOBODY,
    Attribution,
    LiveSpeakers,
    SessionAudio,
    SpeakerModels,
)
from tests.conftest import SPEECH

JFK = SPEECH / "jfk_inaugural" / "jfk.flac"


# -- fakes ----------------------------------------------------------------------------------
class _Given:
    """An embedder that returns given vectors: ``vector(audio)``."""

    def __init__(self, vector: Callable[[np.ndarray], list[float]]) -> None:
        self.vector = vector

    def embed(self, audio: np.ndarray) -> np.ndarray:
        return np.asarray(self.vector(audio), np.float64)


def _voices(vector: Callable[[np.ndarray], list[float]], most: int | None = None
            ) -> OnlineSpeakers:
    return OnlineSpeakers(_Given(vector), max_speakers=most)


def _first_sample(audio: np.ndarray) -> list[float]:
    """A "voice" given by the audio's first sample (1: one speaker, 0: another)."""
    return [float(audio[0]), 1.0 - float(audio[0])]


class _Questions:
    """Roles by question marks: the speaker who asked most is the clinician, the others
    patients; a lone speaker is a patient (so the first speaker's role changes later)."""

    identifier = "questions"

    def speakers(self, turns: Sequence[tuple[str, str]]) -> Mapping[str, RoleGuess]:
        asked: dict[str, int] = {}
        for speaker, text in turns:
            asked[speaker] = asked.get(speaker, 0) + text.count("?")
        if len(asked) < 2:
            return {speaker: RoleGuess("patient", 0.5) for speaker in asked}
        clinician = max(asked, key=lambda s: asked[s])
        return {s: RoleGuess("clinician" if s == clinician else "patient", 0.9) for s in asked}


def _level(audio: np.ndarray) -> list[float]:
    """A "voice" that is the loudness: loud [1, 0], quiet [0, 1]."""
    return [1.0, 0.0] if float(np.max(np.abs(audio))) > 0.4 else [0.0, 1.0]


def _filled(value: float, seconds: float = 1.0) -> np.ndarray:
    return np.full(round(seconds * SAMPLE_RATE), value, np.float32)


# -- the session's audio --------------------------------------------------------------------
def test_session_audio_gives_each_final_its_stretch_and_forgets_what_is_done() -> None:
    audio = SessionAudio(keep_seconds=5.0)
    clock = np.arange(8 * SAMPLE_RATE, dtype=np.float32)  # each sample holds its clock
    for begin in range(0, len(clock), 1600):
        audio.append(clock[begin:begin + 1600])
    assert audio.seconds == pytest.approx(5.0, abs=0.1)  # the oldest 3 s are gone
    assert audio.take(1.0, 2.0) is None
    stretch = audio.take(4.05, 5.5)
    assert stretch is not None
    np.testing.assert_array_equal(stretch, clock[round(4.05 * SAMPLE_RATE):5 * SAMPLE_RATE
                                               + SAMPLE_RATE // 2])
    assert audio.take(4.5, 5.0) is None  # before the last final's end: forgotten
    later = audio.take(6.0, 9.0)  # runs past what arrived: what there is
    assert later is not None and len(later) == 2 * SAMPLE_RATE and later[0] == 6 * SAMPLE_RATE


# -- speakers by voice ----------------------------------------------------------------------
def test_speakers_by_voice_and_the_updates_a_changed_role_causes() -> None:
    speakers = LiveSpeakers(_voices(_first_sample), _Questions())
    first, changed = speakers.add(0, "Any chest pain?", "en", _filled(1.0))
    assert first == Attribution("S1", "patient") and changed == {}
    second, changed = speakers.add(1, "No.", "en", _filled(0.0))
    assert second == Attribution("S2", "patient")
    assert changed == {0: Attribution("S1", "clinician")}
    assert speakers.told(0) == Attribution("S1", "clinician")
    third, changed = speakers.add(2, "Any fever?", "en", _filled(0.9))
    assert third == Attribution("S1", "clinician") and changed == {}
    # Too short to tell a voice by: the other party of the last exchange (not embedded).
    assert speakers.add(3, "No.", "en", _filled(1.0, 0.6)) == (Attribution("S2", "patient"),
                                                               {})
    assert speakers.add(4, "Okay.", "en", _filled(0.0, 0.6))[0].speaker == "S1"
    # Its audio gone: nobody said it, and nothing changes.
    assert speakers.add(5, "Yes.", "en", None) == (NOBODY, {})
    assert speakers.told(5) == NOBODY


def test_short_finals_at_the_start_of_a_session() -> None:
    embedded: list[int] = []

    def vector(audio: np.ndarray) -> list[float]:
        embedded.append(len(audio))
        return _first_sample(audio)

    speakers = LiveSpeakers(_voices(vector), _Questions())
    assert speakers.add(0, "Hm.", "en", _filled(1.0, 0.2)) == (NOBODY, {})  # nothing to tell
    assert speakers.add(1, "Hello.", "en", _filled(1.0, 0.6))[0].speaker == "S1"  # embedded
    assert speakers.add(2, "Hi.", "en", _filled(0.0, 0.6))[0].speaker == "S1"  # one speaker
    assert embedded == [round(0.6 * SAMPLE_RATE)]


def test_a_role_that_flips_updates_every_earlier_final_of_both_speakers() -> None:
    speakers = LiveSpeakers(_voices(_first_sample), _Questions())
    speakers.add(0, "Hello.", "en", _filled(1.0))
    speakers.add(1, "What brings you in?", "en", _filled(0.0))  # S2 asked: clinician
    assert speakers.told(0) == Attribution("S1", "patient")
    _, changed = speakers.add(2, "Any pain? Any fever? Any cough?", "en", _filled(1.0))
    assert changed == {0: Attribution("S1", "clinician"), 1: Attribution("S2", "patient")}


def test_speakers_by_language_in_interpreter_mode() -> None:
    speakers = LiveSpeakers(parties=("en", "es"))
    assert not speakers.by_voice
    assert speakers.add(0, "¿Qué le pasa?", "es", None) == (Attribution("S1", "patient"), {})
    assert speakers.add(1, "Since when?", "en-GB", None) == (Attribution("S2", "clinician"), {})
    assert speakers.add(2, "Desde ayer.", "es", None) == (Attribution("S1", "patient"), {})
    assert speakers.add(3, "Seit gestern.", "de", None) == (NOBODY, {})


def test_speakers_need_a_voice_model_or_the_parties() -> None:
    with pytest.raises(ValueError, match="voice assigner and a role model, or"):
        LiveSpeakers()
    with pytest.raises(ValueError, match="voice assigner and a role model, or"):
        LiveSpeakers(_voices(_level), _Questions(), parties=("en", "es"))


# -- dialogue marks -------------------------------------------------------------------------
def _chest_pain(text: str) -> tuple[Entity, ...]:
    start = text.index("chest pain")
    return (Entity(start, start + 10, "chest pain", "MEDICAL_CONDITION", 1.0,  # type: ignore[arg-type]
                   "lexicon"),)


def test_dialogue_marks_asked_and_denied_entities_online() -> None:
    dialogue = LiveDialogue()
    question = "Any chest pain?"
    marked, changed = dialogue.add(0, "clinician", question, _chest_pain(question), {})
    assert [e.asked for e in marked] == [True] and changed == {}
    marked, changed = dialogue.add(1, "patient", "No.", (), {})
    assert marked == ()
    (denied,) = changed[0]
    assert denied.asked and denied.negated and denied.negated_by == 1


def test_dialogue_marks_are_made_again_when_a_role_changes() -> None:
    dialogue = LiveDialogue()
    question = "Any chest pain?"
    marked, _ = dialogue.add(0, "patient", question, _chest_pain(question), {})
    assert not marked[0].asked  # a patient's question asks nothing
    marked, changed = dialogue.add(1, "patient", "No.", (), {0: "clinician"})
    (denied,) = changed[0]
    assert denied.asked and denied.negated_by == 1
    # The role changes back: the marks are withdrawn, by an update again.
    _, changed = dialogue.add(2, "clinician", "Okay.", (), {0: "patient"})
    assert changed == {0: _chest_pain(question)}


# -- protocol -------------------------------------------------------------------------------
def test_start_speakers_option_is_validated() -> None:
    def start(**fields: Any) -> Start:
        message = CLIENT_MESSAGE.validate_json(json.dumps({"type": "start", **fields}))
        assert isinstance(message, Start)
        return message

    assert start().speakers is None and start(speakers=2).speakers == 2
    assert start(speakers=True).speakers is True
    assert start(languages=["en", "es"], speakers=False).speakers is False
    refused: list[tuple[dict[str, Any], str]] = [
        ({"speakers": 0}, "speakers"), ({"speakers": "2"}, "speakers"),
        ({"speakers": 11}, "speakers"), ({"languages": ["en", "es"], "speakers": 2}, "not a count"),
        ({"version": 1, "speakers": True}, "needs protocol version 2")]
    for bad, why in refused:
        with pytest.raises(ValidationError, match=why):
            start(**bad)
    assert start(version=1).version == 1


def test_version_1_clients_get_version_1_messages() -> None:
    final = Final(utterance=0, segment=0, start=0.0, end=1.0, text="No.", language="en",
                  words=[], entities=None, translation=None, speaker="S2", role="patient",
                  audio_time=1.0)
    assert {"speaker", "role"} <= json.loads(encode(final)).keys()
    old = json.loads(encode(final, 1))
    assert "speaker" not in old and "role" not in old and old["text"] == "No."
    ready = Ready(session="x", sample_rate=16000, asr="a", ner=None, mt=None, languages=[],
                  limits={}, speakers="languages", protocol=1)
    assert "speakers" not in json.loads(encode(ready, 1))
    assert json.loads(encode(ready, 2))["speakers"] == "languages"
    assert "update" in schemas() and schemas()["update"]["properties"]["segment"]


# -- the engine -----------------------------------------------------------------------------
class _Scripted:
    """A recogniser without a model: the n-th final of a stream says the n-th line."""

    identifier = "scripted"
    multilingual = True

    def __init__(self, lines: Sequence[str]) -> None:
        self.lines = list(lines)
        self.said: dict[int, int] = {}

    def open_stream(self, options: StreamOptions) -> OnlineTranscriber:
        return OnlineTranscriber(options)

    def decode(self, jobs: Sequence[DecodeJob], *, hurry: bool = False) -> list[WindowResult]:
        results: list[WindowResult] = []
        for job in jobs:
            if job.kind != "final":
                results.append(([], "en"))
                continue
            said = self.said.get(id(job.stream), 0)
            self.said[id(job.stream)] = said + 1
            # Times are relative to the job's audio, which begins with its context.
            text = self.lines[said % len(self.lines)]
            begin, end = job.context / SAMPLE_RATE, len(job.audio) / SAMPLE_RATE
            results.append(([Segment(0, begin, end, text, (Word(begin, end, text, 1.0),))],
                            "en"))
        return results


def _dialogue_audio() -> tuple[np.ndarray, list[str]]:
    """Four utterances of JFK, loud and quiet in turn (two "voices"), with pauses."""
    jfk = load_audio(JFK)
    pause = np.zeros(round(1.5 * SAMPLE_RATE), np.float32)

    def piece(start: float, end: float, gain: float) -> np.ndarray:
        return jfk[round(start * SAMPLE_RATE):round(end * SAMPLE_RATE)] * gain

    parts = [piece(0.0, 2.7, 1.0), piece(2.9, 4.8, 0.35), piece(5.0, 7.95, 1.0),
             piece(2.9, 4.8, 0.35)]
    audio = np.concatenate([x for part in parts for x in (part, pause)])
    return audio, ["Any chest pain?", "No.", "Do you have a cough?", "Yes, since Monday."]


def _run(engine: Engine[Any, Any], start: Start, audio: np.ndarray) -> list[Message]:
    """Feed ``audio`` to a session in 100 ms frames, stop, and return its events in order."""
    delivered: list[Message | Future[list[Message]]] = []
    ended = threading.Event()

    def deliver(item: Message | Future[list[Message]]) -> None:
        delivered.append(item)
        if getattr(item, "type", None) == "end":
            ended.set()

    session = engine.open(start, deliver)
    for begin in range(0, len(audio), 1600):
        engine.feed(session, encode_pcm(audio[begin:begin + 1600]))
    engine.stop(session)
    assert ended.wait(60), delivered
    events: list[Message] = []
    for item in delivered:
        events += item.result(timeout=30) if isinstance(item, Future) else [item]
    return events


def _annotator() -> EntityAnnotator:
    return EntityAnnotator(EntityRecognizer([LexiconRecognizer([builtin_lexicon()])]),
                           "lexicon", "lexicon")


def test_engine_gives_finals_speakers_and_roles_then_updates_earlier_ones() -> None:
    audio, lines = _dialogue_audio()
    embedded: list[tuple[str, bool]] = []
    engine: Engine[Any, Any] | None = None

    def embed(samples: np.ndarray) -> list[float]:
        assert engine is not None
        free = engine._cond.acquire(timeout=2.0)  # the scheduler's lock is not held here
        if free:
            engine._cond.release()
        embedded.append((threading.current_thread().name, free))
        return _level(samples)

    models = SpeakerModels("voices+questions", lambda most: _voices(embed, most),
                           _Questions())
    engine = Engine(_Scripted(lines), Stages(annotator=_annotator(), speakers=models))
    try:
        events = _run(engine, Start(type="start", language="en"), audio)
    finally:
        engine.shutdown()
    finals = [e for e in events if isinstance(e, Final)]
    assert [f.text for f in finals] == lines
    assert [(f.speaker, f.role) for f in finals] == [
        ("S1", "patient"), ("S2", "patient"), ("S1", "clinician"), ("S2", "patient")]
    updates = [e for e in events if isinstance(e, Update)]
    assert len(updates) == 1
    (update,) = updates
    assert (update.segment, update.speaker, update.role) == (0, "S1", "clinician")
    assert update.entities is not None
    (pain,) = update.entities
    assert pain["text"] == "chest pain" and pain["asked"] and pain["negated_by"] == 1
    kinds = [(type(e).__name__, getattr(e, "segment", None)) for e in events
             if isinstance(e, Final | Update)]
    assert kinds.index(("Update", 0)) == kinds.index(("Final", 1)) + 1  # right after it
    assert finals[0].entities is not None and not finals[0].entities[0].get("asked")
    assert finals[2].entities is not None and finals[2].entities[0]["asked"]  # cough, asked
    assert len(embedded) == 4
    assert all(thread.startswith("medstream-final") and free for thread, free in embedded)


def test_engine_sessions_without_speakers() -> None:
    audio, lines = _dialogue_audio()
    models = SpeakerModels("voices", lambda most: _voices(_level, most), _Questions())
    engine = Engine(_Scripted(lines), Stages(speakers=models))
    try:
        off = _run(engine, Start(type="start", language="en", speakers=False), audio)
        old = _run(engine, Start(type="start", language="en", version=1), audio)
        one = _run(engine, Start(type="start", language="en", speakers=1), audio)
    finally:
        engine.shutdown()
    for events in (off, old):
        finals = [e for e in events if isinstance(e, Final)]
        assert len(finals) == 4 and {(f.speaker, f.role) for f in finals} == {(None, None)}
        assert not any(isinstance(e, Update) for e in events)
    assert {f.speaker for f in one if isinstance(f, Final)} == {"S1"}  # at most one
    no_models = Engine(_Scripted(lines))
    try:
        session = no_models.open(Start(type="start", language="en"), lambda item: None)
        assert session.speakers is None and session.speakers_by is None
        interpreter = no_models.open(Start(type="start", languages=["en", "es"]),
                                     lambda item: None)
        assert interpreter.speakers is not None and interpreter.speakers_by == "languages"
        assert interpreter.audio is None  # no embedding: no audio kept
    finally:
        no_models.shutdown()


def test_a_failing_speaker_model_loses_no_final() -> None:
    audio, lines = _dialogue_audio()

    def broken(samples: np.ndarray) -> list[float]:
        raise RuntimeError("the embedding failed")

    models = SpeakerModels("broken", lambda most: _voices(broken), _Questions())
    engine = Engine(_Scripted(lines), Stages(speakers=models))
    try:
        events = _run(engine, Start(type="start", language="en"), audio)
    finally:
        engine.shutdown()
    finals = [e for e in events if isinstance(e, Final)]
    assert [f.text for f in finals] == lines and {f.speaker for f in finals} == {None}
    errors = [e for e in events if isinstance(e, Error)]
    assert len(errors) == 4 and all(e.code == "internal" and not e.fatal for e in errors)
    assert "could not be told" in errors[0].message


def test_a_long_final_is_told_by_the_middle_of_its_audio() -> None:
    heard: list[np.ndarray] = []

    def vector(audio: np.ndarray) -> list[float]:
        heard.append(audio)
        return [1.0, 0.0]

    speakers = LiveSpeakers(_voices(vector), _Questions())
    clock = np.arange(10 * SAMPLE_RATE, dtype=np.float32) / SAMPLE_RATE  # seconds
    assert speakers.add(0, "A long story.", "en", clock)[0].speaker == "S1"
    (middle,) = heard
    assert len(middle) == MAX_VOICE_SECONDS * SAMPLE_RATE
    assert middle[0] == pytest.approx(5.0 - MAX_VOICE_SECONDS / 2, abs=1e-3)
