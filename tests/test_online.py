"""Incremental recognition: streaming VAD, LocalAgreement-2, utterance finals, trimming."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest
from faster_whisper.vad import get_vad_model

from eval.wer import error_rate
from speech.audio import load_audio
from speech.online import (
    OnlineTranscriber,
    StreamOptions,
    StreamUpdate,
    _common_prefix,
    decode_jobs,
)
from speech.options import TranscribeOptions
from speech.types import Word
from speech.vad import SpeechProbabilities, StreamingVAD
from tests.conftest import REPO, SPEECH

JFK = SPEECH / "jfk_inaugural" / "jfk.flac"


def _run(asr: Any, audio: np.ndarray, options: StreamOptions, step: int = 1600
         ) -> tuple[list[StreamUpdate], OnlineTranscriber]:
    """Feed ``audio`` in 100 ms pieces, decoding whenever the stream asks (no real time)."""
    stream = OnlineTranscriber(options)
    updates: list[StreamUpdate] = []
    longest = 0
    for begin in range(0, len(audio), step):
        stream.accept(audio[begin:begin + step])
        job = stream.next_job()
        if job is not None:
            longest = max(longest, len(job.audio))
            updates += stream.complete(job, decode_jobs(asr, [job])[0])
    stream.finish()
    while not stream.done:
        job = stream.next_job()
        assert job is not None
        updates += stream.complete(job, decode_jobs(asr, [job])[0])
    stream.longest_window = longest  # type: ignore[attr-defined]
    return updates, stream


def test_streaming_vad_matches_whole_recording_vad() -> None:
    audio = load_audio(JFK)
    usable = len(audio) // 512 * 512
    whole = get_vad_model()(audio[:usable]).reshape(-1)
    stream = SpeechProbabilities()
    rng = np.random.default_rng(0)
    pieces, begin = [], 0
    while begin < usable:
        size = int(rng.integers(1, 6000))
        pieces.append(stream(audio[begin:min(begin + size, usable)]))
        begin += size
    assert np.allclose(np.concatenate(pieces), whole, atol=1e-6)


def test_vad_finds_the_pauses_between_phrases() -> None:
    audio = load_audio(JFK)
    vad = StreamingVAD()
    events = [e for i in range(0, len(audio), 1600) for e in vad.feed(audio[i:i + 1600])]
    onsets = [e.sample / 16000 for e in events if e.kind == "onset"]
    # "And so my fellow Americans | ask not | what your country can do for you | ask what …"
    assert len(onsets) == 4
    assert onsets[0] < 0.5


def test_local_agreement_commits_the_common_prefix() -> None:
    def words(text: str) -> list[Word]:
        return [Word(i, i + 1, " " + w, 1.0) for i, w in enumerate(text.split())]

    assert [w.text for w in _common_prefix(words("the patient denies"),
                                           words("The patient, denied chest pain"))] == \
        [" The", " patient,"]
    assert _common_prefix([], words("anything")) == []


def test_silence_and_noise_produce_no_work() -> None:
    rng = np.random.default_rng(1)
    audio = np.concatenate([np.zeros(16000 * 3, np.float32),
                            (0.01 * rng.standard_normal(16000 * 5)).astype(np.float32)])
    stream = OnlineTranscriber(StreamOptions(language="en"))
    for begin in range(0, len(audio), 1600):
        stream.accept(audio[begin:begin + 1600])
        assert stream.next_job() is None
    stream.finish()
    assert stream.done and stream.backlog == 0


@pytest.mark.slow
def test_online_finals_match_the_reference(tiny_en: Any) -> None:
    audio = load_audio(REPO / "samples" / "osce_car0001_50s.mp3")
    reference = (REPO / "samples" / "osce_car0001_50s.txt").read_text()
    updates, stream = _run(tiny_en, audio, StreamOptions(language="en"))
    finals = [u.segment for u in updates if u.segment.is_final]
    partials = [u for u in updates if not u.segment.is_final]
    assert len(finals) >= 5 and partials
    assert [f.id for f in finals] == list(range(len(finals)))
    assert all(a.end <= b.start + 1e-6 for a, b in itertools.pairwise(finals))
    wer = error_rate([reference], [" ".join(f.text for f in finals)]).score
    segments, _ = tiny_en.transcribe(audio, TranscribeOptions(language="en"))
    batch = error_rate([reference], [" ".join(s.text for s in segments)]).score
    assert wer <= batch + 5, (wer, batch)  # measured: 13.1 streamed, 17.9 batch
    # The committed prefix of an utterance only grows, and partials come before its final.
    by_utterance: dict[int, list[str]] = {}
    for update in partials:
        by_utterance.setdefault(update.utterance, []).append(update.stable)
    for stables in by_utterance.values():
        for before, after in itertools.pairwise(stables):
            assert after.startswith(before) or not before
    assert stream.backlog == 0


@pytest.mark.slow
def test_long_speech_is_trimmed_at_committed_sentences(tiny_en: Any) -> None:
    """With short limits, one long stretch of speech is finalised piecewise, and no decode
    window grows past the cut limit (latency cannot creep)."""
    audio = load_audio(REPO / "samples" / "osce_car0001_50s.mp3")
    reference = (REPO / "samples" / "osce_car0001_50s.txt").read_text()
    options = StreamOptions(language="en", min_silence_ms=2000, trim_after=4.0,
                            max_utterance=8.0)
    updates, stream = _run(tiny_en, audio, options)
    finals = [u.segment for u in updates if u.segment.is_final]
    assert max(f.end - f.start for f in finals) <= 8.5
    assert stream.longest_window <= 8.6 * 16000  # type: ignore[attr-defined]
    wer = error_rate([reference], [" ".join(f.text for f in finals)]).score
    assert wer < 35, wer
