"""The interpreter out of the box: a server started without ``--mt-model`` translates an
English ↔ Portuguese session both ways with the packaged pair (the choice of the model: fast
tier; a session over the websocket, espeak-ng English and real Portuguese speech: full tier)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from speech.audio import SAMPLE_RATE, load_audio
from streaming.cli.serve import _mt_model
from streaming.live.client import stream_audio
from streaming.live.engine import Stages
from tests.conftest import SPEECH, speak
from tests.live import live_server
from translate.backends.bergamot import BergamotEngine
from translate.protocol import make_translator

PORTUGUESE = SPEECH / "fleurs_cuttledoc" / "fleurs-pt-006.ogg"


def test_a_server_without_mt_model_translates_with_the_packaged_pair() -> None:
    mt = _mt_model(None, "cpu", offline=True)
    assert mt is not None
    assert "bergamot-en-pt" in mt.identifier and "bergamot-pt-en" in mt.identifier
    assert isinstance(mt, BergamotEngine) and mt.directions == {("en", "pt"), ("pt", "en")}


@pytest.mark.slow
def test_an_en_pt_session_translates_both_ways_over_the_websocket(base_model: Any,
                                                                  tmp_path: Path) -> None:
    """The physician's English (espeak-ng) and then the patient's Portuguese: real speech,
    as base hears espeak-ng's pt-br as Spanish, and between English and Portuguese gives it
    English as often as not. The first 2 s of this recording sound English to base (a 0.95
    share of the two): a turn identified on them was decoded as English, which means Whisper
    translated it ("So long as man, jeeblas!"); ``IDENTIFY_AFTER`` waits for 3 s."""
    english = load_audio(speak("The patient has chest pain and a high fever since yesterday.",
                               tmp_path / "en.wav"))
    portuguese = load_audio(PORTUGUESE)
    pause = np.zeros(SAMPLE_RATE * 2, np.float32)
    # Real-time pace: base on 2 cores serves about one real-time stream.
    audio = np.concatenate([english, pause, portuguese, pause])
    mt = _mt_model(None, "cpu", offline=True)
    assert mt is not None
    with live_server(base_model, Stages(translator=make_translator(mt))) as base:
        result = asyncio.run(stream_audio(base.replace("http://", "ws://") + "/v1/stream",
                                          audio, {"languages": ["en", "pt"],
                                                  "entities": False}, speed=1.0))
    assert result.close_code == 1000 and not result.of_type("error"), result.events
    assert "bergamot" in str(result.of_type("ready")[0]["mt"])
    finals = result.of_type("final")
    turn = len(english) / SAMPLE_RATE + 1
    first = [f for f in finals if f["end"] <= turn]
    second = [f for f in finals if f["start"] >= turn]
    assert first and second and len(first) + len(second) == len(finals), finals
    assert {f["language"] for f in first} == {"en"}, first
    assert {f["language"] for f in second} == {"pt"}, second
    to_portuguese = " ".join(f["translation"]["text"] for f in first).lower()
    assert {f["translation"]["target_language"] for f in first} == {"pt"}
    assert "dor no peito" in to_portuguese and "febre" in to_portuguese, to_portuguese
    heard = " ".join(f["text"] for f in second).lower()
    assert "dentes" in heard, heard
    to_english = " ".join(f["translation"]["text"] for f in second).lower()
    assert {f["translation"]["target_language"] for f in second} == {"en"}
    assert "teeth" in to_english, to_english
