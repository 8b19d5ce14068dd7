"""The interpreter page at ``/`` in headless Chromium, with real speech as the microphone.

Chromium's fake capture device plays a wav file into ``getUserMedia``; the page streams it
over the websocket like a real microphone, and must show the final transcript with its
medical entities marked. Needs Debian's ``chromium`` and the ``playwright`` package (its
driver is ``playwright-core``); ``scripts/setup.sh`` installs both. Outside CI the test is
skipped when Chromium is missing; in CI a missing browser is a failure.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from ner.build import RecognizerSpec
from speech.audio import SAMPLE_RATE, load_audio
from streaming.annotate import EntityAnnotator
from streaming.live.engine import Stages
from tests.conftest import REPO
from tests.live import live_server

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if CHROMIUM is None and not os.environ.get("CI"):
    pytest.skip("Debian's chromium is not installed (scripts/setup.sh installs it)",
                allow_module_level=True)
from playwright.sync_api import Page, sync_playwright  # noqa: E402

SAMPLE = REPO / "samples" / "osce_car0001_50s.mp3"


@pytest.fixture(scope="module")
def server(tiny_en: Any) -> Iterator[str]:
    stages = Stages(annotator=EntityAnnotator.from_spec(RecognizerSpec()))
    with live_server(tiny_en, stages) as base:
        yield base


@contextmanager
def microphone_page(server: str, audio: np.ndarray, tmp_path: Path,
                    ) -> Iterator[tuple[Page, list[str]]]:
    """Headless Chromium on the page at ``server``, one language (no interpreter pair), its
    microphone started and playing ``audio`` then 3 s of silence; yields the page and the
    errors the page raises."""
    wav = tmp_path / "microphone.wav"
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
            page.fill("#lang2", "")
            page.click("#mic")
            yield page, errors
        finally:
            browser.close()


def stop(page: Page) -> None:
    """Stop the microphone and wait until the session has ended."""
    page.click("#stop")
    page.wait_for_function("document.getElementById('status').textContent"
                           ".startsWith('ended')", timeout=60_000)


def test_page_shows_the_final_transcript_of_the_microphone(server: str, tmp_path: Path) -> None:
    assert CHROMIUM is not None, "CI must install Debian's chromium (scripts/setup.sh)"
    # The consultation's first 12 s: "chest pain" is said at 0:05 and marked as a condition
    # when its final arrives.
    audio = load_audio(SAMPLE)[: 12 * SAMPLE_RATE]
    with microphone_page(server, audio, tmp_path) as (page, errors):
        page.wait_for_selector("#col1 .final mark", timeout=120_000)
        stop(page)
        finals = page.locator("#col1 .final").all_inner_texts()
        status = page.inner_text("#status")
        heading = page.inner_text("#head1")
        marks = page.locator("#col1 .final mark").all_inner_texts()
    assert not errors, errors
    assert heading == "Physician (en)"
    assert re.match(r"ended \(\d+ finals, \d+\.\d s\)", status), status
    text = " ".join(finals).lower()
    assert "chest pain" in text, finals  # said at 0:05 of the consultation
    assert "chest pain" in [m.lower() for m in marks], marks
