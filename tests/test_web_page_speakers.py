"""The interpreter page shows who said each final: a two-voice dialogue (espeak-ng) played as
the microphone into headless Chromium, against a server with the speaker and role models.
Skipped like ``tests/test_web_page.py`` when Chromium is missing outside CI."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from speech.audio import SAMPLE_RATE, load_audio
from streaming.live.engine import Stages
from streaming.live.speakers import load_speaker_models
from tests.conftest import SPEECH
from tests.live import live_server
from tests.test_web_page import CHROMIUM, microphone_page, stop

pytestmark = pytest.mark.slow

DIALOGUE = SPEECH / "synth_dialogue_en" / "audio" / "mts_valid_1.wav"


@pytest.fixture(scope="module")
def server(tiny_en: Any) -> Iterator[str]:
    with live_server(tiny_en, Stages(speakers=load_speaker_models())) as base:
        yield base


def test_page_shows_the_role_beside_each_final(server: str, tmp_path: Path) -> None:
    assert CHROMIUM is not None
    audio = load_audio(DIALOGUE)[: 14 * SAMPLE_RATE]  # four turns: doctor, patient, ...
    with microphone_page(server, audio, tmp_path) as (page, errors):  # speakers by voice
        page.wait_for_function("document.querySelectorAll('#col1 .final').length >= 3",
                               timeout=120_000)
        stop(page)
        labels = page.locator("#col1 .final .who").all_text_contents()
        speakers = page.locator("#col1 .final .who").evaluate_all(
            "nodes => nodes.map(n => n.title)")
    assert not errors, errors
    # Every final shows its speaker's role, and its speaker id on hover; which role is right is
    # tests/test_live_speakers_e2e.py's business.
    assert len(labels) >= 3 and set(labels) <= {"clinician", "patient"}, labels
    assert speakers[0] == "S1" and all(s.startswith("S") for s in speakers), speakers
