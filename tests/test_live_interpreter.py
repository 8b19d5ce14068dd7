"""Interpreter mode end to end: two languages, each final identified and translated into the
other party's language by a real MT model, over a websocket with real German speech."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np

from speech.audio import SAMPLE_RATE, load_audio
from streaming.live.client import stream_audio
from streaming.live.engine import Stages
from tests.conftest import SPEECH
from tests.live import live_server
from translate.catalog import load_mt
from translate.translator import Terminology, Translator

GERMAN = SPEECH / "fleurs_cuttledoc" / "fleurs-de-001.ogg"
ENGLISH = SPEECH / "jfk_inaugural" / "jfk.flac"


def test_each_party_is_identified_and_translated_into_the_other_language(
        base_model: Any, tiny_marian: Any) -> None:
    translator = Translator(load_mt(str(tiny_marian.ct2_dir)), Terminology(numbers=True))
    pause = np.zeros(SAMPLE_RATE * 2, np.float32)
    audio = np.concatenate([load_audio(GERMAN), pause, load_audio(ENGLISH), pause])
    with live_server(base_model, Stages(translator=translator)) as base:
        result = asyncio.run(stream_audio(base.replace("http", "ws") + "/v1/stream", audio,
                                          {"languages": ["en", "de"], "entities": False},
                                          speed=3.0))
    assert result.of_type("error") == [], result.of_type("error")
    finals = result.of_type("final")
    german = [f for f in finals if f["end"] <= len(load_audio(GERMAN)) / SAMPLE_RATE + 0.5]
    english = [f for f in finals if f["start"] >= len(load_audio(GERMAN)) / SAMPLE_RATE + 1]
    assert german and english
    assert {f["language"] for f in german} == {"de"}
    assert {f["language"] for f in english} == {"en"}
    for final in german:
        translation = final["translation"]
        assert translation is not None and translation["target_language"] == "en"
        assert translation["text"].strip() and translation["text"] != final["text"]
    # English is translated into German; the de→en test model cannot, and says so per final
    # instead of failing the session.
    for final in english:
        assert final["translation"] is None or final["translation"]["target_language"] == "de"
    assert result.of_type("end")[0]["finals"] == len(finals)
