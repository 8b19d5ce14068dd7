"""The live server over a real websocket on loopback: real speech, bad input, auth, routes."""

from __future__ import annotations

import asyncio
import json
import re
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import websockets

from eval.wer import error_rate
from ner.build import RecognizerSpec
from speech.audio import load_audio
from speech.backends.faster_whisper import FasterWhisperBackend
from speech.backends.nemo_streaming import ChunkJob, ChunkResult, NemoStreaming
from speech.live import LiveRecogniser, WhisperLive
from speech.online import DecodeJob, OnlineTranscriber, StreamOptions, WindowResult
from speech.options import TranscribeOptions
from speech.types import Segment, TranscriptionInfo
from speech.vad import StreamingVAD, VadEvent
from streaming.annotate import EntityAnnotator
from streaming.live.client import stream_audio
from streaming.live.engine import Engine, Stages
from streaming.live.pcm import encode_pcm
from streaming.live.protocol import CLOSE_FORBIDDEN, CLOSE_UNAUTHORIZED, ERROR_CODES, schemas
from streaming.live.server import ServerConfig, serve_in_thread
from tests.conftest import REPO, SPEECH
from tests.live import live_server

SAMPLE = REPO / "samples" / "osce_car0001_50s.mp3"


@pytest.fixture(scope="module")
def server(tiny_en: Any) -> Iterator[str]:
    stages = Stages(annotator=EntityAnnotator.from_spec(RecognizerSpec()))
    with live_server(tiny_en, stages, ServerConfig(max_frame_bytes=64_000)) as base:
        yield base


def _ws(base: str) -> str:
    return base.replace("http://", "ws://") + "/v1/stream"


async def _exchange(url: str, *frames: str | bytes, headers: dict[str, str] | None = None,
                    expect: int) -> list[dict[str, Any]]:
    """Send frames on one connection and collect ``expect`` events."""
    async with websockets.connect(url, additional_headers=headers) as ws:
        for frame in frames:
            await ws.send(frame)
        return [json.loads(await asyncio.wait_for(ws.recv(), 30)) for _ in range(expect)]


@pytest.mark.slow
def test_streamed_consultation_matches_batch_and_marks_entities(server: str,
                                                                 tiny_en: Any) -> None:
    audio = load_audio(SAMPLE)
    reference = SAMPLE.with_suffix(".txt").read_text()
    result = asyncio.run(stream_audio(_ws(server), audio, {"language": "en"}, speed=2.0))
    assert result.close_code == 1000, result.close_reason
    kinds = [e["type"] for e in result.events]
    assert kinds[0] == "ready" and kinds[-1] == "end"
    finals = result.of_type("final")
    assert result.of_type("partial") and len(finals) >= 5
    assert result.of_type("end")[0]["audio_seconds"] == pytest.approx(len(audio) / 16000, abs=0.1)
    assert result.of_type("end")[0]["finals"] == len(finals)
    segments, _ = tiny_en.transcribe(audio, TranscribeOptions(language="en"))
    batch = error_rate([reference], [" ".join(s.text for s in segments)]).score
    streamed = error_rate([reference], [result.text]).score
    assert streamed <= batch + 5, (streamed, batch)
    entities = [(e["text"].lower(), e["type"]) for f in finals for e in f["entities"]]
    assert ("chest pain", "MEDICAL_CONDITION") in entities
    for final in finals:
        for entity in final["entities"]:
            assert final["text"][entity["start"]:entity["end"]] == entity["text"]


def test_bad_input_gets_error_events_and_the_session_goes_on(server: str) -> None:
    start = json.dumps({"type": "start", "language": "en"})
    events = asyncio.run(_exchange(
        _ws(server),
        b"\x00\x01" * 100,                       # audio before start
        "{not json",                             # malformed JSON
        json.dumps({"type": "hello"}),           # unknown type
        json.dumps({"type": "stop"}),            # stop before start
        json.dumps({"type": "start", "sample_rate": 99}),  # invalid start
        json.dumps({"type": "start", "version": 7}),        # unknown protocol version
        start,                                   # a valid start: ready
        start,                                   # a second start
        b"\x00\x01\x02",                         # odd byte count
        b"\x00\x00" * 40_000,                    # oversized frame (80 kB > 64 kB)
        encode_pcm(np.zeros(16000, np.float32)),  # one second of silence: accepted
        json.dumps({"type": "stop"}),
        expect=11))
    codes = [e.get("code", e["type"]) for e in events]
    assert codes == ["no_session", "bad_json", "unknown_type", "no_session", "bad_message",
                     "bad_message", "ready", "already_started", "bad_audio", "frame_too_large",
                     "end"]
    assert all(e["code"] in ERROR_CODES for e in events if e["type"] == "error")
    assert "version" in events[5]["message"]
    assert not any("Traceback" in json.dumps(e) for e in events)
    assert events[-1]["audio_seconds"] == pytest.approx(1.0)


def test_abrupt_disconnects_free_their_sessions(server: str) -> None:
    audio = load_audio(SPEECH / "jfk_inaugural" / "jfk.flac")

    async def drop() -> None:
        async with websockets.connect(_ws(server)) as ws:
            await ws.send(json.dumps({"type": "start", "language": "en"}))
            json.loads(await ws.recv())
            for begin in range(0, 16000 * 4, 1600):
                await ws.send(encode_pcm(audio[begin:begin + 1600]))
        # closed without stop, in the middle of speech

    for _ in range(3):
        asyncio.run(drop())

    async def settled() -> int:
        for _ in range(100):
            health = httpx.get(server + "/healthz").json()
            if health["sessions"] == 0:
                return 0
            await asyncio.sleep(0.1)
        return int(health["sessions"])

    assert asyncio.run(settled()) == 0
    # The server still serves a full session afterwards.
    result = asyncio.run(stream_audio(_ws(server), audio, {"language": "en"}, speed=4.0))
    assert "country" in result.text.lower()


def test_health_metrics_page_and_upload(server: str) -> None:
    health = httpx.get(server + "/healthz")
    assert health.status_code == 200 and health.json()["ready"] is True
    metrics = httpx.get(server + "/metrics").text
    assert "# TYPE medstream_sessions_active gauge" in metrics
    assert "medstream_finals_total" in metrics
    page = httpx.get(server + "/").text
    assert "/v1/stream" in page and 'id="col2"' in page
    assert httpx.get(server + "/openapi.json").json()["paths"]["/v1/transcribe"]
    upload = httpx.post(server + "/v1/transcribe?language=en",
                        content=(SPEECH / "jfk_inaugural" / "jfk.flac").read_bytes(),
                        timeout=120)
    assert upload.status_code == 200
    assert "country" in upload.json()["text"].lower()
    corrupt = httpx.post(server + "/v1/transcribe", content=b"not audio at all" * 10,
                         timeout=60)
    assert corrupt.status_code == 422 and "cannot read audio" in corrupt.json()["detail"]


def test_health_is_not_ready_while_the_backlog_is_over_the_limit(tiny_en: Any) -> None:
    """A balancer polling /healthz sends new sessions elsewhere while this replica lags."""
    audio = load_audio(SPEECH / "jfk_inaugural" / "jfk.flac")
    with live_server(tiny_en, config=ServerConfig(max_backlog_seconds=2.0)) as base:
        async def burst() -> list[dict[str, Any]]:
            seen = []
            async with websockets.connect(_ws(base), max_size=None) as ws:
                await ws.send(json.dumps({"type": "start", "sample_rate": 16000,
                                          "encoding": "pcm_s16le", "language": "en"}))
                await ws.recv()
                for begin in range(0, len(audio), 16000):  # 11 s of speech at once
                    await ws.send(encode_pcm(audio[begin:begin + 16000]))
                async with httpx.AsyncClient() as client:
                    for _ in range(600):
                        health = await client.get(base + "/healthz")
                        seen.append({"code": health.status_code, **health.json()})
                        if seen[-1]["status"] == "ok" and any(
                                h["status"] == "lagging" for h in seen):
                            break
                        await asyncio.sleep(0.05)
            return seen

        seen = asyncio.run(burst())
    lagging = [h for h in seen if h["status"] == "lagging"]
    assert lagging, seen
    assert all(h["code"] == 503 and not h["ready"] and h["backlog_seconds"] > 2.0
               for h in lagging)
    assert seen[-1]["code"] == 200 and seen[-1]["ready"]  # caught up: back in rotation


def test_token_and_origin_are_enforced(tiny_en: Any) -> None:
    config = ServerConfig(token="s3cret", allowed_origins=("https://clinic.example",))
    with live_server(tiny_en, None, config) as base:
        start = json.dumps({"type": "start", "language": "en"})

        async def closed(headers: dict[str, str] | None) -> tuple[int | None, str]:
            async with websockets.connect(_ws(base), additional_headers=headers) as ws:
                with pytest.raises(websockets.ConnectionClosed):
                    await ws.send(start)
                    await asyncio.wait_for(ws.recv(), 10)
                return ws.close_code, ws.close_reason or ""

        code, reason = asyncio.run(closed(None))
        assert code == CLOSE_UNAUTHORIZED and "token" in reason
        assert asyncio.run(closed({"Authorization": "Bearer wrong"}))[0] == CLOSE_UNAUTHORIZED
        code, _ = asyncio.run(closed({"Authorization": "Bearer s3cret",
                                      "Origin": "https://evil.example"}))
        assert code == CLOSE_FORBIDDEN
        events = asyncio.run(_exchange(_ws(base), start, headers={
            "Authorization": "Bearer s3cret", "Origin": "https://clinic.example"}, expect=1))
        assert events[0]["type"] == "ready"
        assert httpx.post(base + "/v1/transcribe", content=b"x").status_code == 401


def test_stream_cli_prints_finals_and_writes_every_event(server: str, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from streaming.cli.app import app

    events_file = tmp_path / "events.jsonl"
    result = CliRunner().invoke(app, [
        "stream", str(SPEECH / "jfk_inaugural" / "jfk.flac"), "--url", _ws(server),
        "--speed", "4", "--language", "en", "--output", str(events_file)],
        env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    assert re.search(r"\[\s*\d+\.\d\d-\s*\d+\.\d\d\] .*country", result.output, re.I)
    events = [json.loads(line) for line in events_file.read_text().splitlines()]
    assert events[0]["type"] == "ready" and events[-1]["type"] == "end"
    assert all(isinstance(e["received"], float) for e in events)
    assert sum(e["type"] == "final" for e in events) == events[-1]["finals"]
    refused = CliRunner().invoke(app, ["stream", str(SPEECH / "jfk_inaugural" / "jfk.flac"),
                                       "--url", "ws://127.0.0.1:9/v1/stream"])
    assert refused.exit_code != 0 and "cannot stream" in refused.output


class _Deaf:
    """A recogniser without a model that hears no words: the VAD still cuts utterances and
    every one of them is decoded (to nothing)."""

    identifier = "deaf"
    reproducibility_key = "deaf"
    multilingual = False

    def open_stream(self, options: StreamOptions) -> OnlineTranscriber:
        return OnlineTranscriber(options)

    def decode(self, jobs: Sequence[DecodeJob], *, hurry: bool = False) -> list[WindowResult]:
        return [([], "en") for _ in jobs]

    def check(self, options: TranscribeOptions) -> None:
        pass

    def transcribe(self, audio: np.ndarray, options: TranscribeOptions,
                   speech: Any = None) -> tuple[Iterator[Segment], TranscriptionInfo]:
        raise NotImplementedError

    def detect_language(self, audio: np.ndarray) -> list[tuple[str, float]]:
        return [("en", 1.0)]


def _live_recognisers(whisper: FasterWhisperBackend, nemo: NemoStreaming
                      ) -> tuple[LiveRecogniser[DecodeJob, WindowResult],
                                 LiveRecogniser[ChunkJob, ChunkResult | None]]:
    """Never called: mypy checks here that both paths implement the live protocols."""
    return WhisperLive(whisper), nemo


def test_the_vad_runs_off_the_event_loop_and_outside_the_scheduler_lock(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Silero runs on every frame: on the event loop it would hold up every other session's
    websocket, and under the scheduler's lock the scheduler."""
    deaf = _Deaf()
    engine = Engine(deaf, name="deaf")
    heard: list[tuple[str, bool, bool | None]] = []
    """Per VAD call: its thread, whether an event loop runs there, and (for the first few)
    whether another thread could take the scheduler's lock meanwhile."""
    feed = StreamingVAD.feed

    def recorded(vad: StreamingVAD, samples: np.ndarray) -> list[VadEvent]:
        try:
            asyncio.get_running_loop()
            on_loop = True
        except RuntimeError:
            on_loop = False
        free = None
        if len(heard) < 5:
            taken: list[bool] = []

            def probe() -> None:
                if engine._cond.acquire(timeout=2.0):
                    engine._cond.release()
                    taken.append(True)

            prober = threading.Thread(target=probe)
            prober.start()
            prober.join()
            free = bool(taken)
        heard.append((threading.current_thread().name, on_loop, free))
        return feed(vad, samples)

    monkeypatch.setattr(StreamingVAD, "feed", recorded)
    audio = load_audio(SPEECH / "jfk_inaugural" / "jfk.flac")[:16000 * 4]
    with serve_in_thread(engine, deaf) as base:
        result = asyncio.run(stream_audio(_ws(base), audio, {"language": "en",
                                                             "entities": False}, speed=8.0))
    assert result.of_type("end"), result.events
    assert len(heard) >= 40  # every 100 ms frame, and the tail at stop
    assert not any(on_loop for _, on_loop, _ in heard), heard
    assert "medstream-server" not in {thread for thread, _, _ in heard}
    assert all(free for _, _, free in heard[:5]), heard[:5]


def test_protocol_document_embeds_the_current_schemas() -> None:
    document = (REPO / "docs" / "protocol.md").read_text(encoding="utf-8")
    for name, schema in schemas().items():
        block = json.dumps(schema, indent=2, sort_keys=True)
        assert block in document, f"docs/protocol.md is out of date for {name}: " \
            "run python -m streaming.live.protocol --markdown"
