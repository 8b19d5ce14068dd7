"""Speakers and roles of live finals end to end: real speech over a websocket to a server with
the real speaker and role models (two espeak-ng voices, a monologue, silence, an interpreter
session, a version 1 client; the synthetic dialogues, whose two voices are one, fail)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ner.lexicon import builtin_lexicon
from ner.recognizer import EntityRecognizer, LexiconRecognizer
from speech.audio import SAMPLE_RATE, load_audio
from streaming.annotate import EntityAnnotator
from streaming.live.client import StreamResult, stream_audio
from streaming.live.engine import Stages
from streaming.live.speakers import load_speaker_models
from tests.conftest import SPEECH, speak
from tests.live import live_server

pytestmark = pytest.mark.slow

DIALOGUE = SPEECH / "synth_dialogue_en"
JFK = SPEECH / "jfk_inaugural" / "jfk.flac"
GERMAN = SPEECH / "fleurs_cuttledoc" / "fleurs-de-001.ogg"
ROLES = {"doctor": "clinician", "patient": "patient"}


@pytest.fixture(scope="module")
def server(tiny_en: Any) -> Iterator[str]:
    annotator = EntityAnnotator(EntityRecognizer([LexiconRecognizer([builtin_lexicon()])]),
                                "lexicon", "lexicon")
    with live_server(tiny_en, Stages(annotator=annotator, speakers=load_speaker_models())
                     ) as base:
        yield base


def _ws(base: str) -> str:
    return base.replace("http://", "ws://") + "/v1/stream"


def _stream(base: str, audio: np.ndarray, **start: Any) -> StreamResult:
    result = asyncio.run(stream_audio(_ws(base), audio, {"language": "en", **start},
                                      speed=4.0))
    assert result.close_code == 1000 and not result.of_type("error"), result.events
    return result


def _settled(result: StreamResult) -> list[dict[str, Any]]:
    """The finals as a client shows them at the end: every update applied, in order."""
    finals: dict[int, dict[str, Any]] = {}
    for event in result.events:
        if event["type"] == "final":
            finals[event["segment"]] = dict(event)
        elif event["type"] == "update":
            shown = finals[event["segment"]]  # only finals the client already has
            assert set(event) - {"received"} == {"type", "segment", "speaker", "role",
                                                 "entities", "audio_time"}
            shown.update(speaker=event["speaker"], role=event["role"])
            if event["entities"] is not None:
                assert [(e["start"], e["end"], e["text"]) for e in event["entities"]] == [
                    (e["start"], e["end"], e["text"]) for e in shown["entities"]]
                shown["entities"] = event["entities"]
    return [finals[k] for k in sorted(finals)]


def _reference_role(turns: list[dict[str, Any]], start: float, end: float) -> str:
    overlap: dict[str, float] = {}
    for turn in turns:
        shared = min(end, turn["end"]) - max(start, turn["start"])
        if shared > 0:
            overlap[turn["role"]] = overlap.get(turn["role"], 0.0) + shared
    return ROLES[max(overlap, key=lambda r: overlap[r])]


def _check_two_speakers(result: StreamResult, turns: list[dict[str, Any]]) -> None:
    """Two speakers, and at least 90 % of the settled finals with their turn's role."""
    assert result.of_type("ready")[0]["speakers"]
    finals = _settled(result)
    assert len(finals) >= len(turns) // 2
    assert {f["speaker"] for f in finals} == {"S1", "S2"}
    right = [f["role"] == _reference_role(turns, f["start"], f["end"]) for f in finals]
    assert sum(right) >= 0.9 * len(finals), [(f["text"], f["speaker"], f["role"])
                                             for f in finals]


# Voices CAM++ tells apart (as in tests/test_transcribe_speakers_e2e.py).
CONSULTATION = (
    ("doctor", "en-us", "Good morning. What brings you in today?"),
    ("patient", "en+f3", "I have had chest pain and a bad cough for three days."),
    ("doctor", "en-us", "Do you have any fever or shortness of breath?"),
    ("patient", "en+f3", "No, I do not. But the pain gets worse when I breathe in."),
    ("doctor", "en-us", "Are you taking any medication at the moment?"),
    ("patient", "en+f3", "Only paracetamol, twice a day, and it helps a little."),
    ("doctor", "en-us", "I will listen to your chest and we will order a chest x-ray."),
)


def test_two_voices_get_two_speakers_and_the_right_roles(server: str, tmp_path: Path) -> None:
    pieces: list[np.ndarray] = []
    turns: list[dict[str, Any]] = []
    at = 0.0
    for index, (role, voice, text) in enumerate(CONSULTATION):
        clip = load_audio(speak(text, tmp_path / f"{index}.wav", voice=voice))
        turns.append({"start": at, "end": at + len(clip) / SAMPLE_RATE, "role": role})
        pieces += [clip, np.zeros(SAMPLE_RATE, np.float32)]
        at += len(clip) / SAMPLE_RATE + 1.0
    result = _stream(server, np.concatenate(pieces), settings={"min_silence_ms": 300})
    _check_two_speakers(result, turns)


@pytest.mark.xfail(strict=True, reason=(
    "the dialogues' two 'voices' are one: espeak-ng 1.51 ignores the +f2 variant after en-gb "
    "(en-gb+f2 is byte-identical to en-gb, a male voice at ~100 Hz like en-us+m3), so no "
    "speaker model can tell the doctor from the patient (CAM++: 0.88-0.90 apart, as close "
    "as one voice to itself; segmentation-3.0 hears one local speaker)"))
@pytest.mark.parametrize("name", ["mts_valid_1", "mts_valid_61"])
def test_the_synthetic_dialogues_get_two_speakers_and_the_right_roles(server: str,
                                                                      name: str) -> None:
    audio = load_audio(DIALOGUE / "audio" / f"{name}.wav")
    turns = [json.loads(line) for line in
             (DIALOGUE / "turns" / f"{name}.jsonl").read_text().splitlines()]
    _check_two_speakers(_stream(server, audio, settings={"min_silence_ms": 300}), turns)


def test_a_monologue_gets_one_speaker_and_silence_none(server: str) -> None:
    finals = _settled(_stream(server, load_audio(JFK)))
    assert finals and {f["speaker"] for f in finals} == {"S1"}
    silence = _stream(server, np.zeros(5 * SAMPLE_RATE, np.float32))
    assert not silence.of_type("final") and not silence.of_type("update")


def test_a_version_1_client_gets_no_speakers(server: str) -> None:
    result = _stream(server, load_audio(JFK)[: 6 * SAMPLE_RATE], version=1)
    assert result.of_type("ready")[0]["protocol"] == 1
    assert "speakers" not in result.of_type("ready")[0]
    finals = result.of_type("final")
    assert finals and not any("speaker" in f or "role" in f for f in finals)
    assert not result.of_type("update")


def test_interpreter_sessions_tell_the_parties_by_language(base_model: Any,
                                                          tmp_path: Path) -> None:
    pause = np.zeros(SAMPLE_RATE * 2, np.float32)
    german = load_audio(GERMAN)
    audio = np.concatenate([german, pause, load_audio(JFK), pause])
    with live_server(base_model) as base:  # no speaker model: the languages are enough
        result = asyncio.run(stream_audio(_ws(base), audio, {"languages": ["en", "de"],
                                                             "entities": False}, speed=3.0))
    assert result.of_type("ready")[0]["speakers"] == "languages"
    finals = _settled(result)
    roles = {(f["language"], f["speaker"], f["role"]) for f in finals}
    assert roles == {("de", "S1", "patient"), ("en", "S2", "clinician")}, finals
