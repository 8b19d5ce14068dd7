"""Output formats parse back with independent parsers; writes are atomic."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
import srt
import webvtt

from speech.types import Segment, TranscriptionInfo, Word
from streaming.batch.writers import render_srt, render_txt, render_vtt, write_atomic, write_outputs
from streaming.document import SourceFile, TranscriptDocument, TranslationAnnotations
from translate.types import Translation


def _doc() -> TranscriptDocument:
    segments = (
        Segment(0, 0.0, 2.5, "What brought you in today?",
                words=(Word(0.0, 0.4, " What", 0.9), Word(0.4, 2.5, " today?", 0.8)),
                language="en"),
        Segment(1, 3.25, 3661.007, "Chest pain --> left arm, since 8 p.m.", language="en"),
    )
    info = TranscriptionInfo(language="en", language_probability=0.99, duration=3700.0,
                             duration_after_vad=3600.0, task="transcribe", model="tiny.en",
                             settings={"beam_size": 5})
    return TranscriptDocument(source=SourceFile("a.wav", 10, "ab" * 32), info=info,
                              segments=segments, fingerprint="f" * 16)


def test_srt_parses_back_with_exact_times_and_text() -> None:
    cues = list(srt.parse(render_srt(_doc())))
    assert [c.index for c in cues] == [1, 2]
    assert cues[0].start == timedelta(0) and cues[0].end == timedelta(seconds=2.5)
    assert cues[1].end == timedelta(hours=1, minutes=1, seconds=1, milliseconds=7)
    assert cues[0].content == "What brought you in today?"
    # "-->" would end the cue's timing line early; it is rewritten inside text.
    assert cues[1].content == "Chest pain -> left arm, since 8 p.m."


def test_vtt_parses_back() -> None:
    captions = webvtt.from_string(render_vtt(_doc())).captions
    assert [(c.start, c.end) for c in captions] == [
        ("00:00:00.000", "00:00:02.500"), ("00:00:03.250", "01:01:01.007")]
    assert captions[0].text == "What brought you in today?"


def test_txt_has_one_line_per_segment() -> None:
    assert render_txt(_doc()).splitlines() == [
        "What brought you in today?", "Chest pain --> left arm, since 8 p.m."]


def test_txt_names_the_language_each_translation_went_into() -> None:
    """An interpreted recording (``--translate-to other``): each party's segments are
    translated into the other's language, and the txt says which."""
    doc = _doc()
    segments = (doc.segments[0], replace(doc.segments[1], text="Dor no peito.", language="pt"))
    translations = (Translation("O que o traz aqui hoje?", segments[0].text, "en", "pt"),
                    Translation("Chest pain.", segments[1].text, "pt", "en"))
    doc = replace(doc, segments=segments, translations=TranslationAnnotations(
        "en↔pt", "text", "bergamot", "b", translations))
    assert render_txt(doc).splitlines() == [
        "What brought you in today?", "  [pt] O que o traz aqui hoje?",
        "Dor no peito.", "  [en] Chest pain."]


def test_json_round_trips_segments_words_language_model_and_settings(tmp_path: Path) -> None:
    doc = _doc()
    written = write_outputs(doc, tmp_path / "visit", ("json",))
    data = json.loads(written[-1].read_text())
    assert data["language"] == "en" and data["model"] == "tiny.en"
    assert data["settings"] == {"beam_size": 5}
    assert data["segments"][0]["words"][1] == {"start": 0.4, "end": 2.5, "text": " today?",
                                               "probability": 0.8}
    assert TranscriptDocument.from_json(written[-1].read_text()) == doc


def test_json_is_written_even_when_not_asked_and_last(tmp_path: Path) -> None:
    written = write_outputs(_doc(), tmp_path / "visit", ("srt", "txt"))
    assert [p.name for p in written] == ["visit.txt", "visit.srt", "visit.json"]


def test_failed_write_keeps_the_old_file_and_leaves_no_temporary(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "visit.txt"
    write_atomic(target, "old transcript\n")

    def broken_fsync(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="No space left"):
        write_atomic(target, "new transcript that never fully lands\n")
    assert target.read_text() == "old transcript\n"
    assert [p.name for p in tmp_path.iterdir()] == ["visit.txt"]
