"""The NeMo cache-aware streaming backend, with tiny models built from a config.

What must hold: a live stream fed in small pieces produces, for each utterance, exactly the
text of NeMo's own cache-aware streaming reference (``CacheAwareStreamingAudioBuffer`` +
``conformer_stream_step``) on that utterance's audio; partials only grow; streams decoded in
one batch get the same text as decoded alone; silence produces nothing; and the backend serves
the live server and the upload endpoint.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

if not os.environ.get("CI"):  # CI installs the nemo extra: a failed import must fail there
    pytest.importorskip("nemo.collections.asr", reason="the nemo extra is not installed")

from speech.audio import SAMPLE_RATE, load_audio
from speech.backends.nemo_streaming import NemoStream, NemoStreaming, load_nemo
from speech.errors import InvalidOptionError, ModelNotFoundError
from speech.loader import load_asr
from speech.online import StreamOptions, StreamUpdate
from speech.options import TranscribeOptions
from streaming.live.client import stream_audio
from streaming.live.engine import Engine
from streaming.live.server import serve_in_thread
from tests.conftest import SPEECH
from tests.nemo_models import save_tiny, tiny_streaming_model

JFK = SPEECH / "jfk_inaugural" / "jfk.flac"


@pytest.fixture(scope="module", params=["ctc", "rnnt"])
def backend(request: pytest.FixtureRequest) -> NemoStreaming:
    return NemoStreaming(tiny_streaming_model(request.param), name=f"tiny-{request.param}")


@pytest.fixture(scope="module")
def speech_audio() -> np.ndarray:
    return load_audio(JFK)


def reference_text(backend: NemoStreaming, audio: np.ndarray) -> str:
    """NeMo's own cache-aware streaming simulation of ``audio`` (its example script's loop)."""
    import torch
    from nemo.collections.asr.parts.utils.streaming_utils import CacheAwareStreamingAudioBuffer

    model = backend.model
    buffer = CacheAwareStreamingAudioBuffer(model=model)
    buffer.append_audio(audio.astype(np.float32))
    channel, time_cache, channel_len = model.encoder.get_initial_cache_state(batch_size=1)
    previous_hyp, previous_pred, texts = None, None, None
    with torch.inference_mode():
        for step, (chunk, lengths) in enumerate(iter(buffer)):
            (previous_pred, texts, channel, time_cache, channel_len,
             previous_hyp) = model.conformer_stream_step(
                processed_signal=chunk, processed_signal_length=lengths,
                cache_last_channel=channel, cache_last_time=time_cache,
                cache_last_channel_len=channel_len, keep_all_outputs=buffer.is_buffer_empty(),
                previous_hypotheses=previous_hyp, previous_pred_out=previous_pred,
                drop_extra_pre_encoded=0 if step == 0 else
                model.encoder.streaming_cfg.drop_extra_pre_encoded,
                return_transcription=True)
    assert texts is not None
    first = texts[0]
    return (first if isinstance(first, str) else first.text or "").strip()


WHOLE = StreamOptions(language="en", pause_end=None)
"""Utterances end where the VAD ends them: a final cut at a sentence's pause is the text the
model had decoded before the pause (tests/test_nemo_sentences.py), not NeMo's reference decode
of its audio, which also writes what the look-ahead after it holds."""


def run_stream(backend: NemoStreaming, audio: np.ndarray, piece: int = 1600
               ) -> tuple[NemoStream, list[StreamUpdate]]:
    stream = backend.open_stream(WHOLE)
    updates: list[StreamUpdate] = []
    for begin in range(0, len(audio), piece):
        stream.accept(audio[begin: begin + piece])
        while (job := stream.next_job()) is not None:
            updates += stream.complete(job, backend.decode([job])[0])
    stream.finish()
    while (job := stream.next_job()) is not None:
        updates += stream.complete(job, backend.decode([job])[0])
    assert stream.done
    return stream, updates


def test_streamed_utterances_equal_nemo_reference(backend: NemoStreaming,
                                                  speech_audio: np.ndarray) -> None:
    _, updates = run_stream(backend, speech_audio)
    finals = [u for u in updates if u.segment.is_final]
    assert len(finals) >= 2, "the VAD should cut JFK's sentence at its pauses"
    for final in finals:
        begin = round(final.segment.start * SAMPLE_RATE)
        end = round(final.segment.end * SAMPLE_RATE)
        assert final.segment.text == reference_text(backend, speech_audio[begin:end])
    # Partials only grow, and each utterance's last partial is a prefix of its final.
    by_utterance: dict[int, list[str]] = {}
    for update in updates:
        if not update.segment.is_final:
            by_utterance.setdefault(update.utterance, []).append(update.segment.text)
    assert by_utterance, "an utterance of several chunks has partials"
    texts = {f.utterance: f.segment.text for f in finals}
    for number, partials in by_utterance.items():
        for before, after in itertools.pairwise(partials):
            assert after.startswith(before)
        assert texts[number].startswith(partials[-1])


def test_batched_streams_match_streams_decoded_alone(backend: NemoStreaming,
                                                      speech_audio: np.ndarray) -> None:
    clips = [speech_audio, speech_audio[SAMPLE_RATE * 3:], speech_audio[: SAMPLE_RATE * 7]]
    alone = [[u.segment.text for u in run_stream(backend, clip)[1] if u.segment.is_final]
             for clip in clips]
    streams = [backend.open_stream(WHOLE) for _ in clips]
    got: list[list[str]] = [[] for _ in clips]
    piece = 2400
    longest = max(len(c) for c in clips)
    batches = 0
    for begin in range(0, longest + piece, piece):
        for stream, clip in zip(streams, clips, strict=True):
            if begin < len(clip):
                stream.accept(clip[begin: begin + piece])
            elif not stream.finished:
                stream.finish()
        while True:
            jobs = [j for s in streams if (j := s.next_job()) is not None]
            if not jobs:
                break
            batches += len(jobs) > 1
            for job, result in zip(jobs, backend.decode(jobs), strict=True):
                index = streams.index(job.stream)
                got[index] += [u.segment.text for u in job.stream.complete(job, result)
                               if u.segment.is_final]
    assert batches > 0
    assert got == alone


def test_silence_and_noise_produce_nothing(backend: NemoStreaming) -> None:
    rng = np.random.default_rng(0)
    audio = np.concatenate([np.zeros(SAMPLE_RATE * 3, np.float32),
                            (0.01 * rng.standard_normal(SAMPLE_RATE * 3)).astype(np.float32)])
    stream, updates = run_stream(backend, audio)
    assert updates == []
    assert stream.backlog == 0


def test_long_speech_is_cut_into_bounded_utterances(backend: NemoStreaming,
                                                    speech_audio: np.ndarray) -> None:
    stream = backend.open_stream(StreamOptions(trim_after=2.0, max_utterance=3.0))
    updates = []
    loud = np.concatenate([speech_audio[: SAMPLE_RATE * 9]] * 2)
    for begin in range(0, len(loud), 1600):
        stream.accept(loud[begin: begin + 1600])
        while (job := stream.next_job()) is not None:
            updates += stream.complete(job, backend.decode([job])[0])
    stream.finish()
    while (job := stream.next_job()) is not None:
        updates += stream.complete(job, backend.decode([job])[0])
    finals = [u.segment for u in updates if u.segment.is_final]
    assert finals and max(s.end - s.start for s in finals) <= 3.0 + 0.1  # + one piece


def test_refuses_what_it_cannot_do(backend: NemoStreaming) -> None:
    with pytest.raises(InvalidOptionError, match="'en' only"):
        backend.open_stream(StreamOptions(language="de"))
    with pytest.raises(InvalidOptionError, match="cannot translate"):
        backend.check(TranscribeOptions(task="translate"))
    from tests.nemo_models import tiny_streaming_model as build

    model = build("ctc")
    model.cfg.preprocessor.normalize = "per_feature"
    with pytest.raises(InvalidOptionError, match="normalised per utterance"):
        NemoStreaming(model)


def test_nemo_file_loads_through_load_asr(tmp_path: Path, speech_audio: np.ndarray) -> None:
    path = save_tiny("ctc", tmp_path / "tiny-ctc.nemo")
    backend = load_asr(str(path))
    assert isinstance(backend, NemoStreaming)
    assert "tiny-ctc" in backend.identifier and "sha256:" in backend.identifier
    same = NemoStreaming(tiny_streaming_model("ctc"))
    segments, info = backend.transcribe(speech_audio, TranscribeOptions(language="en"))
    expected, _ = same.transcribe(speech_audio, TranscribeOptions(language="en"))
    assert [s.text for s in segments] == [s.text for s in expected]
    assert info.language == "en"
    with pytest.raises(ModelNotFoundError):
        load_nemo(tmp_path / "missing.nemo")


def test_live_server_and_upload_with_the_nemo_backend(speech_audio: np.ndarray) -> None:
    backend = NemoStreaming(tiny_streaming_model("rnnt"), name="tiny-rnnt")
    expected = [s.text for s in backend.transcribe(speech_audio, TranscribeOptions())[0]]
    engine = Engine(backend, name=backend.identifier)
    with serve_in_thread(engine, backend) as base:
        # Real time, so that the server decodes each frame before the next one comes, as
        # transcribe() does: where a NeMo utterance ends depends on how much audio the encoder
        # had heard when the VAD's offset came (faster streaming gave other ends in CI).
        result = asyncio.run(stream_audio(base.replace("http", "ws") + "/v1/stream",
                                          speech_audio, {"language": "en"}, speed=1.0))
        ready = result.of_type("ready")[0]
        assert "NeMo cache-aware" in ready["asr"]
        assert [e["text"] for e in result.of_type("final")] == expected
        assert result.of_type("end")[0]["finals"] == len(expected)
        import io

        import soundfile as sf

        wav = io.BytesIO()
        sf.write(wav, speech_audio, SAMPLE_RATE, format="WAV")
        response = httpx.post(base + "/v1/transcribe", content=wav.getvalue(), timeout=120)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        assert [s["text"] for s in body["segments"]] == expected, json.dumps(body)[:500]


def test_batch_cli_transcribes_with_a_nemo_file(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from streaming.cli.app import app

    model = save_tiny("rnnt", tmp_path / "tiny-rnnt.nemo")
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["transcribe", str(JFK), "--model", str(model), "--out",
                                      str(out), "--offline", "--format", "json"],
                                env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    data = json.loads((out / "jfk.json").read_text(encoding="utf-8"))
    expected, _ = NemoStreaming(tiny_streaming_model("rnnt")).transcribe(
        load_audio(JFK), TranscribeOptions())
    assert [s["text"] for s in data["segments"]] == [s.text for s in expected]
    assert "NeMo cache-aware" in data["model"]
