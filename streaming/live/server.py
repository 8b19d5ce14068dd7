"""``medstream serve``: the live interpreter over a websocket, plus upload, health and metrics.

Routes:

* ``GET /`` — the interpreter's web page;
* ``WS /v1/stream`` — the live protocol (``docs/protocol.md``);
* ``POST /v1/transcribe`` — a recording in the request body → its segments as JSON;
* ``GET /healthz`` — readiness and load, for a load balancer;
* ``POST /v1/ticket`` — a single-use websocket ticket for a browser (``Authorization: Bearer``);
* ``GET /metrics`` — Prometheus text format;
* ``GET /docs``, ``GET /openapi.json`` — the OpenAPI documentation.

With a token, everything but ``/``, ``/healthz`` and the websocket handshake itself asks for
``Authorization: Bearer``; ``streaming.live.auth`` says how browsers get in, and
``docs/security.md`` what the server guarantees. uvicorn's access log is off (it prints query
strings): ``streaming.live.middleware`` writes the server's own.

Session state lives only in the process that holds the websocket, so replicas behind any load
balancer need no shared state. Transcripts are never logged unless ``debug_transcripts`` is on.
"""

from __future__ import annotations

import asyncio
import contextlib
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
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse
from pydantic import ValidationError
from starlette.websockets import WebSocketDisconnect, WebSocketState

from speech.audio import AudioTooLongError, decode_checked
from speech.backends.base import ASRBackend
from speech.errors import MedstreamError
from speech.live import JobT, ResultT
from speech.options import TranscribeOptions
from streaming.live.admission import Admission
from streaming.live.auth import Tickets, bearer_ok, origin_allowed
from streaming.live.engine import Engine, LiveSession, UnsupportedError
from streaming.live.memory import release_freed_memory
from streaming.live.middleware import AccessLog, HostGuard, printable, redact_logs
from streaming.live.pcm import FrameError
from streaming.live.protocol import (
    CLIENT_MESSAGE,
    CLOSE_BUSY,
    CLOSE_FORBIDDEN,
    CLOSE_START_TIMEOUT,
    CLOSE_UNAUTHORIZED,
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

ECHO_LIMIT = 40
"""Characters of a client's value that an error message quotes."""
MESSAGE_LIMIT = 500
"""Characters of an error message sent to a client."""


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
    allowed_hosts: tuple[str, ...] = ()
    """Names the ``Host`` header may carry besides IP addresses and ``localhost`` (``*``:
    any). Guards against DNS rebinding, token or not."""
    ticket_seconds: float = 30.0
    """How long a websocket ticket (``POST /v1/ticket``) stays valid; it opens one websocket."""
    start_timeout: float = 10.0
    """Seconds a connection may stay open without a valid ``start`` (then closed, 4408)."""
    idle_timeout: float = 30.0
    """Seconds a started session may go without an audio frame (then finalised and ended)."""
    max_connections: int = 256
    """Open connections (HTTP and websocket) past which an HTTP request gets 503 (uvicorn's
    ``limit_concurrency``; a websocket handshake is bounded by the session slots instead)."""
    max_connections_per_client: int | None = 8
    """Websockets one client address may hold at once (None: no limit)."""

    @property
    def ws_max_size(self) -> int:
        """Largest websocket message the websocket layer reads: twice ``max_frame_bytes``
        (a frame between the two gets ``frame_too_large``; a larger one closes with 1009)."""
        return 2 * self.max_frame_bytes


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
    """The FastAPI application serving ``engine`` (which the caller owns and shuts down).

    It also puts a filter on uvicorn's loggers that keeps query strings and credentials out of
    every log line (:func:`streaming.live.middleware.redact_logs`)."""
    config = config or ServerConfig()
    redact_logs([config.token] if config.token else [])
    guard = _Guard(config)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        engine.shutdown()

    app = FastAPI(title="medstream", version=f"protocol {PROTOCOL_VERSION}",
                  description="Live transcription, medical entities and translation.",
                  lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(HostGuard, allowed=config.allowed_hosts)
    app.add_middleware(AccessLog)  # outermost: it sees what HostGuard refuses too
    started = time.monotonic()

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page() -> str:
        return files("streaming.live").joinpath("web/index.html").read_text(encoding="utf-8")

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        """Ready (200) when a session can be opened and served in time: 503 with status
        ``full`` at ``max_sessions``, ``lagging`` when the backlog is over
        ``max_backlog_seconds``. ``load`` is the recogniser's busy fraction since start."""
        sessions = guard.admission.open
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
    async def metrics(request: Request) -> str:
        """Prometheus text (with a token: ``Authorization: Bearer`` required)."""
        _authorise_http(request, config)
        return _prometheus(engine.metrics(), config.max_sessions)

    @app.post("/v1/ticket")
    async def ticket(request: Request) -> JSONResponse:
        """A single-use ticket that opens one websocket (``/v1/stream?ticket=…``) within
        ``expires_in`` seconds: how a browser, which cannot set headers on a websocket,
        authenticates without putting the token in a URL."""
        _authorise_http(request, config)
        issued = guard.tickets.issue()
        if issued is None:
            raise HTTPException(429, "too many unused tickets: use or let expire the ones "
                                     "issued")
        return JSONResponse({"ticket": issued, "expires_in": config.ticket_seconds},
                            headers={"Cache-Control": "no-store"})

    @app.get("/openapi.json", include_in_schema=False)
    async def openapi(request: Request) -> JSONResponse:
        _authorise_http(request, config)
        return JSONResponse(app.openapi())

    @app.get("/docs", include_in_schema=False)
    async def docs(request: Request) -> HTMLResponse:
        _authorise_http(request, config)
        return get_swagger_ui_html(openapi_url="/openapi.json", title="medstream")

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
        await _serve_session(websocket, engine, config, guard)

    return app


@contextlib.contextmanager
def serve_in_thread(engine: Engine[JobT, ResultT], asr: ASRBackend,
                    config: ServerConfig | None = None, host: str = "127.0.0.1",
                    port: int = 0, log_level: str = "warning") -> Iterator[str]:
    """Run the server on a thread (tests, benchmarks, embedding); yields its base URL.

    ``port`` 0 picks a free port. The engine is shut down when the block ends. uvicorn runs
    with :func:`uvicorn_options`, as ``medstream serve`` does.
    """
    import socket
    import threading

    import uvicorn

    if port == 0:
        with socket.socket() as sock:
            sock.bind((host, 0))
            port = int(sock.getsockname()[1])
    config = config or ServerConfig()
    server = uvicorn.Server(uvicorn.Config(create_app(engine, asr, config), host=host, port=port,
                                           log_level=log_level, **uvicorn_options(config)))
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


def uvicorn_options(config: ServerConfig) -> dict[str, Any]:
    """uvicorn settings for this app, beyond host, port, TLS and log level: no uvicorn access
    log (it prints query strings; :class:`~streaming.live.middleware.AccessLog` replaces it),
    websocket messages bounded while they are read, and at most ``max_connections``."""
    return {"access_log": False, "ws_max_size": config.ws_max_size,
            "limit_concurrency": config.max_connections, "server_header": False}


class _Guard:
    """The server's admission state: session slots and unspent tickets."""

    def __init__(self, config: ServerConfig) -> None:
        self.admission = Admission(config.max_sessions, config.max_connections_per_client)
        self.tickets = Tickets(config.ticket_seconds)

    def refusal(self, websocket: WebSocket, config: ServerConfig) -> tuple[int, str] | None:
        """Why a websocket is refused before it gets a slot (close code, reason), or None. A
        ticket presented is spent here, whatever the outcome."""
        ticket = websocket.query_params.get("ticket")
        spent = ticket is not None and self.tickets.redeem(ticket)
        if not origin_allowed(websocket.headers.get("origin"), scheme=websocket.url.scheme,
                              host=websocket.headers.get("host"),
                              allowed=config.allowed_origins):
            return CLOSE_FORBIDDEN, "origin not allowed"
        if config.token is None:
            return None
        if "token" in websocket.query_params:
            return CLOSE_UNAUTHORIZED, ("unauthorized: the token is not accepted in the URL; "
                                        "send Authorization: Bearer, or a ticket from "
                                        "POST /v1/ticket")
        if bearer_ok(websocket.headers.get("authorization"), config.token) or spent:
            return None
        return CLOSE_UNAUTHORIZED, "unauthorized: missing or wrong bearer token or ticket"


def _authorise_http(request: Request, config: ServerConfig) -> None:
    if config.token is None:
        return
    if not bearer_ok(request.headers.get("authorization"), config.token):
        raise HTTPException(401, "missing or wrong bearer token",
                            headers={"WWW-Authenticate": "Bearer"})


def _transcribe_upload(asr: ASRBackend, body: IO[bytes], options: TranscribeOptions,
                       max_seconds: float) -> dict[str, Any]:
    """Decode (at most ``max_seconds``) and recognise an upload; the memory of its samples
    goes back to the operating system before the answer leaves, refused or not."""
    try:
        return _recognise_upload(asr, body, options, max_seconds)
    finally:
        release_freed_memory()


def _recognise_upload(asr: ASRBackend, body: IO[bytes], options: TranscribeOptions,
                      max_seconds: float) -> dict[str, Any]:
    decoded = decode_checked(body, name="upload", max_seconds=max_seconds)
    segments, info = asr.transcribe(decoded.samples, options)
    found = [s.to_dict() for s in segments]
    declared = decoded.declared_seconds
    return {"language": info.language, "duration": info.duration, "model": info.model,
            "segments": found, "text": " ".join(s["text"] for s in found),
            "warning": decoded.warning, "decoded_duration": round(decoded.seconds, 3),
            "declared_duration": round(declared, 3) if declared is not None else None}


async def _serve_session(websocket: WebSocket, engine: Engine[JobT, ResultT],
                         config: ServerConfig, guard: _Guard) -> None:
    """Refuse (accept, then close with a code a browser can read) or serve one websocket. The
    session slot is reserved before the first ``await`` after the checks and released
    whichever way the connection ends."""
    refused = guard.refusal(websocket, config)
    if refused is not None:
        await websocket.accept()
        await websocket.close(*refused)
        return
    client = websocket.client.host if websocket.client else "-"
    with guard.admission.reserve(client) as busy:
        await websocket.accept()
        if busy is not None:
            await websocket.close(CLOSE_BUSY, busy)
            return
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
        self.opened = time.monotonic()
        self.last_audio = self.opened
        """When the last audio frame (or the ``start``) came: the idle timeout counts from it."""

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
            try:
                message = await asyncio.wait_for(self.websocket.receive(), self._patience())
            except TimeoutError:  # receive() is safe to cancel: no message is lost
                if await self._timed_out():
                    return
                continue
            if message["type"] == "websocket.disconnect":
                return
            if not self.limit.allow():
                await self._error("rate_limited", f"more than "
                                  f"{self.config.max_messages_per_second:g} messages per second")
                continue
            if message.get("bytes") is not None:
                self.last_audio = time.monotonic()
                await self._audio(message["bytes"])
            elif message.get("text") is not None and await self._text(message["text"]):
                return

    def _patience(self) -> float | None:
        """Seconds to wait for the next message before a timeout applies (None: no limit,
        once the client has stopped and the server is finishing)."""
        if self.session is None:
            return max(0.0, self.opened + self.config.start_timeout - time.monotonic())
        if self.stopping:
            return None
        return max(0.0, self.last_audio + self.config.idle_timeout - time.monotonic())

    async def _timed_out(self) -> bool:
        """Apply the timeout that expired; True when the connection is closed by it."""
        session = self.session
        if session is None:
            logger.info("connection closed: no start within %g s", self.config.start_timeout)
            with contextlib.suppress(Exception):
                await self.websocket.close(CLOSE_START_TIMEOUT, f"no start message within "
                                           f"{self.config.start_timeout:g} s")
            return True
        await self._error("idle_timeout", f"no audio for {self.config.idle_timeout:g} s: the "
                          "session is finalised and ended", fatal=True)
        self.stopping = True
        await asyncio.to_thread(self.engine.stop, session)
        return False  # ``end`` follows; the sender then closes the socket

    async def _text(self, text: str) -> bool:
        """Handle a text frame; True when the client has stopped."""
        payload = await self._parse(text)
        if payload is None:
            return False
        kind = payload.get("type") if isinstance(payload, dict) else None
        if kind not in ("start", "stop"):
            await self._error("unknown_type", f"unknown message type "
                              f"{printable(repr(kind), ECHO_LIMIT)}; the client sends start, "
                              "binary audio, then stop")
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

    async def _parse(self, text: str) -> Any:
        """The JSON value of a text frame, or None after a ``bad_json`` error (malformed,
        nested past the parser's recursion limit, or an integer over Python's 4,300 digits)."""
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            await self._error("bad_json", f"not JSON: {exc.msg} at character {exc.pos}")
        except RecursionError:
            await self._error("bad_json", "JSON nested too deeply")
        except ValueError:
            await self._error("bad_json", "a JSON number has too many digits")
        return None

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
                    "idle_seconds": self.config.idle_timeout,
                    "max_backlog_seconds": self.config.max_session_backlog_seconds}))
        self.last_audio = time.monotonic()
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
        self.queue.put_nowait(Error(code=code, message=printable(message, MESSAGE_LIMIT),
                                    fatal=fatal))

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
    """The first problems of an invalid message, quoting the client's field names and values
    only in part."""
    problems = []
    for error in exc.errors()[:5]:
        where = ".".join(printable(str(p), ECHO_LIMIT) for p in error["loc"]
                         if p not in ("start", "stop"))
        problems.append(f"{where or 'message'}: {printable(error['msg'], 2 * ECHO_LIMIT)}")
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
        ("medstream_hurried_decodes_total", "counter",
         "Final windows decoded the faster, less accurate way: the server was behind.",
         values["hurried_decodes"]),
        ("medstream_errors_total", "counter", "Error events sent.", values["errors"]),
        ("medstream_backlog_seconds_max", "gauge",
         "Largest backlog of received, unrecognised audio.", values["max_backlog_seconds"]),
    ]
    lines = []
    for name, kind, help_text, value in rows:
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}", f"{name} {value:g}"]
    return "\n".join(lines) + "\n"

