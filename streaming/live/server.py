"""``medstream serve``: the live interpreter over a websocket, plus upload, health and metrics.

Routes:

* ``GET /`` — the interpreter's web page;
* ``WS /v1/stream`` — the live protocol (``docs/protocol.md``);
* ``POST /v1/transcribe`` — a recording in the request body → its segments as JSON;
* ``GET /healthz`` — readiness and load, for a load balancer;
* ``GET /metrics`` — Prometheus text format;
* ``GET /docs`` — the OpenAPI documentation.

Session state lives only in the process that holds the websocket, so replicas behind any load
balancer need no shared state. Transcripts are never logged unless ``debug_transcripts`` is on.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import time
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from importlib.resources import files
from typing import IO, Any, Generic

from fastapi import FastAPI, HTTPException, Query, Request, WebSocket
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse
from pydantic import ValidationError
from starlette.websockets import WebSocketDisconnect, WebSocketState

from speech.audio import AudioTooLongError, decode_checked
from speech.backends.base import ASRBackend
from speech.errors import MedstreamError
from speech.live import JobT, ResultT
from speech.options import TranscribeOptions
from streaming.live.engine import Engine, LiveSession, UnsupportedError
from streaming.live.memory import release_freed_memory
from streaming.live.pcm import FrameError
from streaming.live.protocol import (
    CLIENT_MESSAGE,
    PROTOCOL_VERSION,
    End,
    Error,
    Final,
    Message,
    Ready,
    Start,
    Status,
    Stop,
    encode,
)
from streaming.live.uploads import (
    UploadLimits,
    UploadRefusedError,
    UploadSlots,
    check_content_length,
    spool,
)

logger = logging.getLogger("medstream.server")

CLOSE_UNAUTHORIZED = 4401
CLOSE_FORBIDDEN_ORIGIN = 4403
CLOSE_BUSY = 4429
CLOSE_PROTOCOL = 4400


@dataclass(frozen=True)
class ServerConfig:
    token: str | None = None
    """Bearer token every client must present (None: no authentication)."""
    allowed_origins: tuple[str, ...] = ()
    """Browser origins allowed to open a websocket; empty allows the server's own origin and
    clients that send none (non-browser), ``*`` allows any."""
    max_sessions: int = 16
    max_backlog_seconds: float = 10.0
    """Audio waiting for recognition (the largest session backlog) above which ``/healthz``
    says not ready, so that a balancer sends new sessions to another replica. Sessions are
    still accepted (a client that comes straight here is served, late)."""
    max_frame_bytes: int = 256 * 1024
    """Largest binary frame (8 s of 16 kHz pcm_s16le)."""
    max_messages_per_second: float = 100.0
    max_session_seconds: float = 4 * 3600.0
    """Longest audio one session may stream."""
    max_session_backlog_seconds: float = 60.0
    """Received audio one session may have waiting for recognition (seconds). A frame that
    would take it over is refused (``backlog_full`` error, and a ``status``): a client that
    sends faster than the server recognises cannot make it buffer without bound. Audio held
    per server is then at most ``max_sessions`` times this (64 kB per second of audio)."""
    max_upload_bytes: int = 512 * 1024 * 1024
    """Largest ``POST /v1/transcribe`` body: refused by its Content-Length before reading
    (413), and counted while it is streamed to a temporary file."""
    max_upload_seconds: float = 1800.0
    """Longest upload, in seconds of audio: refused by its header's duration, or as soon as
    decoding passes it (413). 30 min decode to 115 MB; longer recordings go through
    ``medstream transcribe``."""
    max_concurrent_uploads: int = 2
    """Uploads received, decoded and recognised at once; more get 503 with Retry-After."""
    upload_receive_seconds: float = 300.0
    """Longest time to receive an upload's body (408 after it): a slow client holds a slot."""
    debug_transcripts: bool = False


class _RateLimit:
    """A token bucket: ``rate`` messages per second, bursts of two seconds' worth."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.capacity = max(1.0, 2 * rate)
        self.tokens = self.capacity
        self.last = time.monotonic()

    def allow(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


def create_app(engine: Engine[JobT, ResultT], asr: ASRBackend,
               config: ServerConfig | None = None) -> FastAPI:
    """The FastAPI application serving ``engine`` (which the caller owns and shuts down)."""
    config = config or ServerConfig()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        engine.shutdown()

    app = FastAPI(title="medstream", version=f"protocol {PROTOCOL_VERSION}",
                  description="Live transcription, medical entities and translation.",
                  lifespan=lifespan)
    started = time.monotonic()

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page() -> str:
        return files("streaming.live").joinpath("web/index.html").read_text(encoding="utf-8")

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        """Ready (200) when a session can be opened and served in time: 503 with status
        ``full`` at ``max_sessions``, ``lagging`` when the backlog is over
        ``max_backlog_seconds``. ``load`` is the recogniser's busy fraction since start."""
        sessions = engine.sessions
        backlog = engine.backlog()
        uptime = max(time.monotonic() - started, 1e-9)
        status = "full" if sessions >= config.max_sessions else \
            "lagging" if backlog > config.max_backlog_seconds else "ok"
        body = {"status": status, "ready": status == "ok", "sessions": sessions,
                "max_sessions": config.max_sessions,
                "backlog_seconds": round(backlog, 3),
                "load": round(min(1.0, engine.busy_seconds / uptime), 4),
                "asr": engine.name, "protocol": PROTOCOL_VERSION}
        return JSONResponse(body, status_code=200 if body["ready"] else 503)

    @app.get("/metrics", response_class=PlainTextResponse)
    async def metrics() -> str:
        return _prometheus(engine.metrics(), config.max_sessions)

    limits = UploadLimits(config.max_upload_bytes, config.max_upload_seconds,
                          config.max_concurrent_uploads, config.upload_receive_seconds)
    uploads = UploadSlots(limits.max_concurrent)

    @app.post("/v1/transcribe")
    async def transcribe(request: Request, language: str | None = Query(None),
                         beam_size: int = Query(5, ge=1, le=10)) -> JSONResponse:
        """Recognise a recording sent as the request body (any format PyAV reads).

        Refused: over ``max_upload_bytes`` (413, by Content-Length before reading), over
        ``max_upload_seconds`` of audio (413), ``max_concurrent_uploads`` already running (503,
        Retry-After). A truncated or damaged recording is transcribed as far as it decodes,
        with a ``warning`` and its ``decoded_duration`` and ``declared_duration``."""
        _authorise_http(request, config)
        try:
            check_content_length(request.headers.get("content-length"), limits.max_bytes)
            options = TranscribeOptions(language=language, beam_size=beam_size)
            with uploads.take(), await spool(request.stream(), limits) as body:
                result = await run_in_threadpool(_transcribe_upload, asr, body, options,
                                                 limits.max_seconds)
        except UploadRefusedError as exc:
            raise HTTPException(exc.status, exc.message, headers=exc.headers) from exc
        except AudioTooLongError as exc:
            raise HTTPException(413, str(exc)) from exc
        except (MedstreamError, ValueError) as exc:
            raise HTTPException(422, str(exc)) from exc
        return JSONResponse(result)

    @app.websocket("/v1/stream")
    async def stream(websocket: WebSocket) -> None:
        await _serve_session(websocket, engine, config)

    return app


@contextlib.contextmanager
def serve_in_thread(engine: Engine[JobT, ResultT], asr: ASRBackend,
                    config: ServerConfig | None = None, host: str = "127.0.0.1",
                    port: int = 0) -> Iterator[str]:
    """Run the server on a thread (tests, benchmarks, embedding); yields its base URL.

    ``port`` 0 picks a free port. The engine is shut down when the block ends.
    """
    import socket
    import threading

    import uvicorn

    if port == 0:
        with socket.socket() as sock:
            sock.bind((host, 0))
            port = int(sock.getsockname()[1])
    server = uvicorn.Server(uvicorn.Config(create_app(engine, asr, config), host=host, port=port,
                                           log_level="warning", ws_max_size=16 * 1024 * 1024))
    thread = threading.Thread(target=server.run, name="medstream-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError(f"the server did not start on {host}:{port}")
        time.sleep(0.02)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=60)


def _authorise_http(request: Request, config: ServerConfig) -> None:
    if config.token is None:
        return
    if not _token_ok(request.headers.get("authorization"), None, config.token):
        raise HTTPException(401, "missing or wrong bearer token",
                            headers={"WWW-Authenticate": "Bearer"})


def _token_ok(header: str | None, query: str | None, token: str) -> bool:
    presented = None
    if header and header.lower().startswith("bearer "):
        presented = header[7:].strip()
    elif query:
        presented = query  # browsers cannot set headers on a websocket
    return presented is not None and hmac.compare_digest(presented.encode(), token.encode())


def _origin_ok(websocket: WebSocket, config: ServerConfig) -> bool:
    origin = websocket.headers.get("origin")
    if origin is None or "*" in config.allowed_origins:
        return True
    if origin in config.allowed_origins:
        return True
    host = websocket.headers.get("host", "")
    return origin.split("://", 1)[-1] == host


def _transcribe_upload(asr: ASRBackend, body: IO[bytes], options: TranscribeOptions,
                       max_seconds: float) -> dict[str, Any]:
    """Decode (at most ``max_seconds``) and recognise an upload; the memory of its samples
    goes back to the operating system before the answer does."""
    decoded = decode_checked(body, name="upload", max_seconds=max_seconds)
    segments, info = asr.transcribe(decoded.samples, options)
    found = [s.to_dict() for s in segments]
    declared = decoded.declared_seconds
    result = {"language": info.language, "duration": info.duration, "model": info.model,
              "segments": found, "text": " ".join(s["text"] for s in found),
              "warning": decoded.warning, "decoded_duration": round(decoded.seconds, 3),
              "declared_duration": round(declared, 3) if declared is not None else None}
    del decoded, segments
    release_freed_memory()
    return result


async def _serve_session(websocket: WebSocket, engine: Engine[JobT, ResultT],
                         config: ServerConfig) -> None:
    if config.token is not None and not _token_ok(websocket.headers.get("authorization"),
                                                  websocket.query_params.get("token"),
                                                  config.token):
        await websocket.accept()
        await websocket.close(CLOSE_UNAUTHORIZED, "unauthorized: missing or wrong bearer token")
        return
    if not _origin_ok(websocket, config):
        await websocket.accept()
        await websocket.close(CLOSE_FORBIDDEN_ORIGIN, "origin not allowed")
        return
    if engine.sessions >= config.max_sessions:
        await websocket.accept()
        await websocket.close(CLOSE_BUSY, "server full: try another replica or later")
        return
    await websocket.accept()
    connection = _Connection(websocket, engine, config)
    await connection.run()


class _Connection(Generic[JobT, ResultT]):
    """One websocket: receives messages, feeds the engine, sends its events in order."""

    def __init__(self, websocket: WebSocket, engine: Engine[JobT, ResultT],
                 config: ServerConfig) -> None:
        self.websocket = websocket
        self.engine = engine
        self.config = config
        self.loop = asyncio.get_running_loop()
        self.queue: asyncio.Queue[Message | Future[list[Message]] | None] = asyncio.Queue()
        self.session: LiveSession[JobT, ResultT] | None = None
        self.limit = _RateLimit(config.max_messages_per_second)
        self.stopping = False

    def deliver(self, item: Message | Future[list[Message]]) -> None:
        """Called from the engine's threads."""
        self.loop.call_soon_threadsafe(self.queue.put_nowait, item)

    async def run(self) -> None:
        sender = asyncio.create_task(self._send_events())
        try:
            await self._receive()
        except WebSocketDisconnect:
            pass
        finally:
            if self.session is not None and not self.session.ended:
                self.engine.close(self.session)  # the client went away: free the session
            self.queue.put_nowait(None)
            with contextlib.suppress(Exception):
                await sender

    async def _receive(self) -> None:
        while True:
            message = await self.websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            if not self.limit.allow():
                await self._error("rate_limited", f"more than "
                                  f"{self.config.max_messages_per_second:g} messages per second")
                continue
            if message.get("bytes") is not None:
                await self._audio(message["bytes"])
            elif message.get("text") is not None and await self._text(message["text"]):
                return

    async def _text(self, text: str) -> bool:
        """Handle a text frame; True when the client has stopped."""
        try:
            payload = json.loads(text)
        except json.JSONDecodeError as exc:
            await self._error("bad_json", f"not JSON: {exc.msg} at character {exc.pos}")
            return False
        kind = payload.get("type") if isinstance(payload, dict) else None
        if kind not in ("start", "stop"):
            await self._error("unknown_type", f"unknown message type {kind!r}; the client "
                              "sends start, binary audio, then stop")
            return False
        try:
            message = CLIENT_MESSAGE.validate_python(payload)
        except ValidationError as exc:
            await self._error("bad_message", _describe(exc))
            return False
        if isinstance(message, Start):
            await self._start(message)
            return False
        assert isinstance(message, Stop)
        if self.session is None:
            await self._error("no_session", "stop before start")
            return False
        self.stopping = True
        await asyncio.to_thread(self.engine.stop, self.session)
        # The sender closes the socket after ``end``; keep reading so a disconnect is seen.
        return False

    async def _start(self, start: Start) -> None:
        if self.session is not None:
            await self._error("already_started", "this session has already started")
            return
        try:
            self.session = self.engine.open(start, self.deliver)
        except UnsupportedError as exc:
            await self._error("unsupported", str(exc))
            return
        s = self.session
        annotator, translator = s.enrichment.annotator, s.enrichment.translator
        notes = []
        if annotator is None and start.entities:
            notes.append("entity recognition is not configured on this server")
        wants_translation = bool(start.languages) or start.translate_to is not None
        if wants_translation and translator is None:
            notes.append("translation is not available: the server has no MT model "
                         "(medstream serve --mt-model)")
        if start.speakers and s.speakers is None:
            notes.append("speakers are not available: the server has no speaker model "
                         "(medstream serve --speakers)")
        languages = list(start.languages) or ([start.language] if start.language else [])
        self.queue.put_nowait(Ready(
            protocol=start.version, speakers=s.speakers_by,
            session=s.id, sample_rate=start.sample_rate, asr=self.engine.name,
            ner=annotator.model if annotator is not None else None,
            mt=translator.model if translator is not None else None,
            languages=languages, notes=notes,
            limits={"max_frame_bytes": self.config.max_frame_bytes,
                    "max_messages_per_second": self.config.max_messages_per_second,
                    "max_session_seconds": self.config.max_session_seconds,
                    "max_backlog_seconds": self.config.max_session_backlog_seconds}))
        logger.info("session %s started (%s, %d Hz)", s.id, start.encoding, start.sample_rate)

    async def _audio(self, frame: bytes) -> None:
        session = self.session
        if session is None:
            await self._error("no_session", "audio before start: send a start message first")
            return
        if self.stopping:
            await self._error("bad_message", "audio after stop is ignored")
            return
        if len(frame) > self.config.max_frame_bytes:
            await self._error("frame_too_large", f"a frame of {len(frame)} bytes is over the "
                              f"limit of {self.config.max_frame_bytes}; send smaller frames")
            return
        seconds = len(frame) / session.pcm.width / session.pcm.sample_rate
        if session.pcm.seconds_in + seconds > self.config.max_session_seconds:
            await self._error("session_too_long", f"the session reached "
                              f"{self.config.max_session_seconds:g} s of audio; it is finalised",
                              fatal=True)
            self.stopping = True
            await asyncio.to_thread(self.engine.stop, session)
            return
        backlog = session.transcriber.backlog
        if backlog + seconds > self.config.max_session_backlog_seconds:
            # Faster than the server recognises: the frame is refused, never held.
            await self._error("backlog_full", f"{backlog:.1f} s of this session's audio wait "
                              f"for recognition, the limit is "
                              f"{self.config.max_session_backlog_seconds:g} s: this frame "
                              f"({seconds:.2f} s) is dropped; send audio at real time")
            self.queue.put_nowait(Status(state="lagging", backlog=round(backlog, 2),
                                         audio_time=session.audio_time))
            return
        try:
            # The VAD runs in feed: off the event loop, which serves every other session.
            # Awaiting it keeps this session's frames, and its events, in order.
            await asyncio.to_thread(self.engine.feed, session, frame)
        except FrameError as exc:
            await self._error("bad_audio", str(exc))

    async def _error(self, code: str, message: str, fatal: bool = False) -> None:
        self.engine.totals["errors"] += 1
        self.queue.put_nowait(Error(code=code, message=message, fatal=fatal))

    async def _send_events(self) -> None:
        while True:
            item = await self.queue.get()
            if item is None:
                break
            if isinstance(item, Future):
                try:
                    messages = await asyncio.wrap_future(item)
                except Exception:
                    logger.exception("entity recognition or translation failed")
                    messages = [Error(code="internal", message="entity recognition or "
                                      "translation of a final failed; the final is sent "
                                      "without them")]
            else:
                messages = [item]
            for message in messages:
                if not await self._send(message):
                    return

    async def _send(self, message: Message) -> bool:
        """Send one event in the session's protocol version; False when the connection is
        done (closed, or ``end`` sent)."""
        websocket = self.websocket
        if isinstance(message, Final) and self.config.debug_transcripts:
            logger.debug("final %s: %s", message.segment, message.text)
        if websocket.application_state != WebSocketState.CONNECTED:
            return True
        version = self.session.start.version if self.session is not None else PROTOCOL_VERSION
        try:
            await websocket.send_text(encode(message, version))
        except (WebSocketDisconnect, RuntimeError):
            return False
        if isinstance(message, End):
            with contextlib.suppress(Exception):
                await websocket.close(1000, "end of session")
            return False
        return True


def _describe(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors()[:5]:
        where = ".".join(str(p) for p in error["loc"] if p not in ("start", "stop"))
        problems.append(f"{where or 'message'}: {error['msg']}")
    return "; ".join(problems)


def _prometheus(values: dict[str, float], max_sessions: int) -> str:
    rows: list[tuple[str, str, str, float]] = [
        ("medstream_sessions_active", "gauge", "Live sessions open now.",
         values["active_sessions"]),
        ("medstream_sessions_max", "gauge", "Sessions this replica accepts.", max_sessions),
        ("medstream_sessions_total", "counter", "Sessions opened.", values["sessions"]),
        ("medstream_audio_seconds_total", "counter", "Seconds of live audio received.",
         values["audio_seconds"]),
        ("medstream_decodes_total", "counter", "Recognition windows decoded.",
         values["decodes"]),
        ("medstream_decode_seconds_total", "counter", "Seconds spent in the recogniser.",
         values["decode_seconds"]),
        ("medstream_partials_total", "counter", "Partial hypotheses sent.", values["partials"]),
        ("medstream_finals_total", "counter", "Final segments produced.", values["finals"]),
        ("medstream_errors_total", "counter", "Error events sent.", values["errors"]),
        ("medstream_backlog_seconds_max", "gauge",
         "Largest backlog of received, unrecognised audio.", values["max_backlog_seconds"]),
    ]
    lines = []
    for name, kind, help_text, value in rows:
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}", f"{name} {value:g}"]
    return "\n".join(lines) + "\n"

