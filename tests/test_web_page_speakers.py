"""The interpreter page shows who said each final: a two-voice dialogue (espeak-ng) played as
the microphone into headless Chromium, against a server with the speaker and role models.
Skipped like ``tests/test_web_page.py`` when Chromium is missing outside CI."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from playwright.sync_api import sync_playwright

from speech.audio import SAMPLE_RATE, load_audio
from streaming.live.engine import Stages
from streaming.live.speakers import load_speaker_models
from tests.conftest import SPEECH
from tests.live import live_server
from tests.test_web_page import CHROMIUM

pytestmark = pytest.mark.slow

DIALOGUE = SPEECH / "synth_dialogue_en" / "audio" / "mts_valid_1.wav"


@pytest.fixture(scope="module")
def server(tiny_en: Any) -> Iterator[str]:
    with live_server(tiny_en, Stages(speakers=load_speaker_models())) as base:
        yield base


def test_page_shows_the_role_beside_each_final(server: str, tmp_path: Path) -> None:
    assert CHROMIUM is not None
    wav = tmp_path / "microphone.wav"
    audio = load_audio(DIALOGUE)[: 14 * SAMPLE_RATE]  # four turns: doctor, patient, ...
    sf.write(wav, np.concatenate([audio, np.zeros(3 * SAMPLE_RATE, np.float32)]), SAMPLE_RATE,
             subtype="PCM_16")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream", f"--use-file-for-fake-audio-capture={wav}",
            "--autoplay-policy=no-user-gesture-required"])
        try:
            page = browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(server + "/")
            page.fill("#lang2", "")  # tiny.en: one language; speakers by voice
            page.click("#mic")
            page.wait_for_function("document.querySelectorAll('#col1 .final').length >= 3",
                                   timeout=120_000)
            page.click("#stop")
            page.wait_for_function("document.getElementById('status').textContent"
                                   ".startsWith('ended')", timeout=60_000)
            labels = page.locator("#col1 .final .who").all_text_contents()
            speakers = page.locator("#col1 .final .who").evaluate_all(
                "nodes => nodes.map(n => n.title)")
        finally:
            browser.close()
    assert not errors, errors
    # Every final shows its speaker's role, and its speaker id on hover; which role is right is
    # tests/test_live_speakers_e2e.py's business.
    assert len(labels) >= 3 and set(labels) <= {"clinician", "patient"}, labels
    assert speakers[0] == "S1" and all(s.startswith("S") for s in speakers), speakers
