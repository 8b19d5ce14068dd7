"""A bilingual recording (an interpreted consultation) transcribed in batch with
``TranscribeOptions.languages`` / ``transcribe --languages``: each stretch of speech in its own
language (fast: the grouping and the options; full tier: real English and Portuguese speech
with the packaged Whisper base)."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from eval.wer import error_rate
from speech.audio import SAMPLE_RATE, load_audio
from speech.chunking import Span
from speech.identify import language_stretches
from speech.options import TranscribeOptions
from streaming.cli.app import app
from tests.conftest import SPEECH, read_manifest

FLEURS = SPEECH / "fleurs_cuttledoc"


def test_consecutive_runs_of_one_language_are_decoded_together() -> None:
    runs = [Span(0, 2), Span(3, 5), Span(6, 9), Span(10, 11), Span(12, 14)]
    heard = dict(zip(runs, ["en", "en", "pt", "en", "en"], strict=True))
    assert language_stretches(runs, heard.__getitem__) == [
        ("en", [Span(0, 2), Span(3, 5)]), ("pt", [Span(6, 9)]),
        ("en", [Span(10, 11), Span(12, 14)])]
    assert language_stretches([], heard.__getitem__) == []


def test_languages_name_two_or_more_of_a_recording_whose_language_is_not_given() -> None:
    with pytest.raises(ValueError, match="languages"):
        TranscribeOptions(language="en", languages=("en", "pt"))
    with pytest.raises(ValueError, match="languages"):
        TranscribeOptions(languages=("pt",))
    assert TranscribeOptions(languages=("en", "pt")).to_dict()["languages"] == ["en", "pt"]
    # Without them the settings (and so the fingerprint that lets a batch resume) are as they
    # were before the option existed.
    assert "languages" not in TranscribeOptions().to_dict()


def _conversation() -> tuple[np.ndarray, list[tuple[float, float, str]], str]:
    """FLEURS English and Portuguese recordings alternating, 1 s apart: the audio, each
    turn's span and language, and what was said."""
    rows = {Path(r["audio_filepath"]).name: r for r in read_manifest("fleurs_cuttledoc")}
    gap = np.zeros(SAMPLE_RATE, np.float32)
    pieces, spans, said, clock = [], [], [], 0.0
    for name in ("fleurs-en-005.ogg", "fleurs-pt-005.ogg", "fleurs-en-006.ogg",
                 "fleurs-pt-006.ogg"):
        audio = load_audio(FLEURS / name)
        spans.append((clock, clock + len(audio) / SAMPLE_RATE, name.split("-")[1]))
        pieces += [audio, gap]
        clock += (len(audio) + len(gap)) / SAMPLE_RATE
        said.append(rows[name]["text"])
    return np.concatenate(pieces), spans, " ".join(said)


def test_each_turn_of_an_interpreted_conversation_is_transcribed_in_its_language(
        base_model: Any) -> None:
    """Without ``languages`` the whole recording is decoded in the language of its first 30 s,
    and Whisper translates the other party's speech instead of transcribing it."""
    audio, spans, said = _conversation()
    texts = {}
    for languages in ((), ("en", "pt")):
        found, info = base_model.transcribe(audio, TranscribeOptions(languages=languages))
        segments = list(found)
        texts[languages] = " ".join(s.text for s in segments)
    assert [s.id for s in segments] == list(range(len(segments)))
    assert all(a.start <= b.start for a, b in itertools.pairwise(segments))
    for segment in segments:
        middle = (segment.start + segment.end) / 2
        spoken = next(lang for start, end, lang in spans if start - 1 <= middle <= end + 1)
        assert segment.language == spoken, segment
    assert {s.language for s in segments} == {"en", "pt"}
    assert info.language in ("en", "pt") and info.settings["languages"] == ["en", "pt"]
    one, both = (error_rate([said], [texts[k]]).score for k in ((), ("en", "pt")))
    assert both < 25 and both < one - 20, (one, both, texts)


def test_transcribe_languages_translates_each_party_into_the_others_language(
        base_model: Any, tmp_path: Path) -> None:
    """``transcribe --languages en,pt --translate-to other`` with the packaged en↔pt pair: the
    English turns get Portuguese translations and the Portuguese ones English."""
    audio, spans, _ = _conversation()
    two = round((spans[1][1] + 0.5) * SAMPLE_RATE)  # the first English and Portuguese turns
    sf.write(tmp_path / "visit.wav", audio[:two], SAMPLE_RATE)
    result = CliRunner().invoke(app, ["transcribe", str(tmp_path / "visit.wav"), "--out",
                                      str(tmp_path / "out"), "--offline", "--languages",
                                      "en,pt", "--translate-to", "other"])
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "out" / "visit.json").read_text())
    pairs = [(s["language"], s["translation"]["target_language"]) for s in data["segments"]]
    assert {"en", "pt"} <= {language for language, _ in pairs}
    assert all(target == {"en": "pt", "pt": "en"}[language] for language, target in pairs)
    assert data["translation"]["language"] == "en↔pt"
    text = (tmp_path / "out" / "visit.txt").read_text()
    assert "  [pt] " in text and "  [en] " in text
