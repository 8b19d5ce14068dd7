"""``medstream serve`` (the live server) and ``medstream stream`` (a client for it)."""

from __future__ import annotations

import asyncio
import copy
import ipaddress
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from ner.build import RecognizerSpec
from ner.catalog import DEFAULT_NER_MODEL
from speech.audio import load_audio
from speech.backends.faster_whisper import resolve_device
from speech.errors import MedstreamError
from speech.loader import load_asr
from speech.options import Device, ModelOptions
from streaming.annotate import EntityAnnotator
from streaming.cli.console import fail, stderr
from translate.catalog import load_mt_model
from translate.defaults import PACKAGED_NAME
from translate.glossary import read_glossary
from translate.protocol import MTModel, make_translator
from translate.translator import Terminology


def serve_command(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    model: Annotated[str, typer.Option(help="Whisper model (catalog name, Hub id or "
                                            "directory); base is multilingual, tiny.en is "
                                            "fastest for English.")] = "base",
    device: Annotated[Device, typer.Option(help="cpu, cuda or auto.")] = "auto",
    compute_type: Annotated[str, typer.Option(help="CTranslate2 compute type.")] = "auto",
    entities: Annotated[bool, typer.Option(help="Load the NER model so sessions can ask "
                                                "for entities.")] = True,
    ner_model: Annotated[str, typer.Option(help="NER model name or directory.")
                         ] = DEFAULT_NER_MODEL,
    mt_model: Annotated[str | None, typer.Option(help="MT model for translations (catalog "
                                                      "name, Hub id or directory); default: "
                                                      "the packaged en<->pt pair "
                                                      "(bergamot).")] = None,
    glossary: Annotated[list[str] | None, typer.Option(
        help="ID=FILE: a glossary sessions can pick by id (repeatable); the first is "
             "also applied when a session names none.")] = None,
    speakers: Annotated[bool, typer.Option(
        help="Load the speaker embedding and role models so that each final of a "
             "single-language session says who spoke it (interpreter sessions need neither: "
             "their languages say it). Off by default: it costs about 0.2-0.3 s of one core "
             "per final, and one utterance at a time it does not yet tell similar voices "
             "apart (benchmarks/live_speakers.py).")] = False,
    roles_model: Annotated[str, typer.Option(help="Speaker-role model name or directory.")
                           ] = "roles-en",
    token: Annotated[str | None, typer.Option(
        help="Bearer token clients must send (default: $MEDSTREAM_TOKEN; none: no auth).")
                     ] = None,
    allow_origin: Annotated[list[str] | None, typer.Option(
        help="Browser origin allowed to connect besides the server's own, as "
             "scheme://host[:port], matched exactly (repeatable; * for any).")] = None,
    allow_host: Annotated[list[str] | None, typer.Option(
        help="Host name clients may reach the server by, besides IP addresses and localhost "
             "(repeatable; * for any). Other Host headers are refused (DNS rebinding).")
                          ] = None,
    insecure: Annotated[bool, typer.Option(
        help="Listen beyond loopback without a token or without TLS (refused otherwise: "
             "patient audio and transcripts would be open or in clear on the network).")
                        ] = False,
    max_sessions: Annotated[int, typer.Option(help="Websocket sessions this process holds "
                                                   "(a slot is taken at connection).")] = 16,
    max_connections: Annotated[int, typer.Option(
        help="Open connections (HTTP and websocket) past which HTTP requests get 503 "
             "(websockets are bounded by --max-sessions).")] = 256,
    max_connections_per_client: Annotated[int, typer.Option(
        help="Websockets one client address may hold at once (0: no limit).")] = 8,
    start_timeout: Annotated[float, typer.Option(
        help="Seconds a websocket may stay open without a valid start (then closed, 4408).")
                             ] = 10.0,
    idle_timeout: Annotated[float, typer.Option(
        help="Seconds a started session may send no audio (then finalised and ended).")
                            ] = 30.0,
    ticket_seconds: Annotated[float, typer.Option(
        help="Lifetime of a single-use websocket ticket (POST /v1/ticket).")] = 30.0,
    max_backlog: Annotated[float, typer.Option(help="Seconds of audio waiting for recognition "
                                               "above which /healthz says not ready (503, "
                                               "lagging) so a balancer sends new sessions "
                                               "elsewhere.")] = 10.0,
    max_session_backlog: Annotated[float, typer.Option(
        min=1.0, help="Seconds of audio one session may have waiting for recognition; "
        "frames past it are dropped with a backlog_full error (audio sent faster than "
        "real time).")] = 60.0,
    max_upload_mb: Annotated[int, typer.Option(
        min=1, help="Largest POST /v1/transcribe body, MB (413 by Content-Length, "
        "before reading).")] = 512,
    max_upload_seconds: Annotated[float, typer.Option(
        min=1.0, help="Longest upload in seconds of audio, declared or decoded (413); "
        "longer recordings: medstream transcribe.")] = 1800.0,
    max_uploads: Annotated[int, typer.Option(
        min=1, help="Uploads transcribed at once; more get 503 with Retry-After.")] = 2,
    upload_timeout: Annotated[float, typer.Option(
        min=1.0, help="Seconds to receive an upload's body (408 after).")] = 300.0,
    max_batch: Annotated[int, typer.Option(
        help="Windows of different sessions decoded in one call: 0 = 4 on CPU (partials; "
             "finals one at a time), 16 on CUDA.")
                         ] = 0,
    debug_transcripts: Annotated[bool, typer.Option(
        help="Log final transcripts (never on by default: they are health data).")] = False,
    ssl_certfile: Annotated[Path | None, typer.Option(help="TLS certificate (PEM).")] = None,
    ssl_keyfile: Annotated[Path | None, typer.Option(help="TLS private key (PEM).")] = None,
    offline: Annotated[bool, typer.Option(help="Never contact the model hub.")] = False,
) -> None:
    """Serve live transcription, entities and translation over a websocket (/v1/stream),
    with an interpreter web page at /, uploads at /v1/transcribe, /healthz and /metrics."""
    import uvicorn

    from streaming.live.engine import Engine, EngineConfig, Stages
    from streaming.live.server import ServerConfig, create_app, uvicorn_options

    secret = token or os.environ.get("MEDSTREAM_TOKEN") or None
    warning = check_exposure(host, token=secret is not None,
                             tls=ssl_certfile is not None,
                             insecure=insecure)
    if warning:
        stderr.print(warning)
    try:
        resolved_device: Device = "cuda" if resolve_device(device) == "cuda" else "cpu"
        asr = load_asr(model, ModelOptions(device=resolved_device, compute_type=compute_type),
                       allow_download=not offline)
        stages = Stages()
        if entities:
            spec = RecognizerSpec(ner_model, "cuda" if resolved_device == "cuda" else "cpu")
            stages.annotator = EntityAnnotator.from_spec(spec)
        mt = _mt_model(mt_model, resolved_device, offline)
        if mt is not None:
            stages.translator = make_translator(mt)
            for index, item in enumerate(glossary or ()):
                name, _, path = item.partition("=")
                if not name or not path:
                    raise fail(f"--glossary takes ID=FILE, not {item!r}")
                translator = make_translator(mt, Terminology(read_glossary(Path(path))))
                stages.glossaries[name] = translator
                if index == 0:
                    stages.translator = translator
        elif glossary:
            raise fail("--glossary needs an MT model: add --mt-model")
        if speakers:
            from streaming.live.speakers import load_speaker_models

            stages.speakers = load_speaker_models(roles_model)
    except MedstreamError as exc:
        raise fail(str(exc)) from None
    gpu = resolved_device == "cuda"
    batch = max_batch or (16 if gpu else 4)
    engine = Engine(asr, stages, EngineConfig(max_batch=batch, batch_finals=gpu),
                    name=asr.identifier)
    config = ServerConfig(token=secret, allowed_origins=tuple(allow_origin or ()),
                          allowed_hosts=tuple(allow_host or ()), max_sessions=max_sessions,
                          max_backlog_seconds=max_backlog,
                          max_session_backlog_seconds=max_session_backlog,
                          max_upload_bytes=max_upload_mb * 1024 * 1024,
                          max_upload_seconds=max_upload_seconds, max_concurrent_uploads=max_uploads,
                          upload_receive_seconds=upload_timeout,
                          debug_transcripts=debug_transcripts,
                          max_connections=max_connections,
                          max_connections_per_client=max_connections_per_client or None,
                          start_timeout=start_timeout, idle_timeout=idle_timeout,
                          ticket_seconds=ticket_seconds)
    app = create_app(engine, asr, config)
    stderr.print(f"serving {asr.identifier} on {'https' if ssl_certfile else 'http'}://"
                 f"{host}:{port} (auth: {'token' if config.token else 'none'})")
    uvicorn.run(app, host=host, port=port, ssl_certfile=str(ssl_certfile) if ssl_certfile
                else None, ssl_keyfile=str(ssl_keyfile) if ssl_keyfile else None,
                log_level="info", log_config=log_config(debug_transcripts),
                **uvicorn_options(config))


def log_config(debug_transcripts: bool = False) -> dict[str, Any]:
    """uvicorn's logging configuration plus the server's own loggers (its access log, session
    lines; finals too with ``debug_transcripts``) on the same stderr handler."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["medstream"] = {"handlers": ["default"], "propagate": False,
                                      "level": "DEBUG" if debug_transcripts else "INFO"}
    return config


def check_exposure(host: str, *, token: bool, tls: bool, insecure: bool) -> str | None:
    """Refuse (raise) listening beyond loopback without a token or without TLS unless
    ``insecure``; with it, return the warning to print (None when there is nothing to say)."""
    if _loopback(host) or (token and tls):
        return None
    missing = " and ".join(m for m, ok in (("a token", token), ("TLS", tls)) if not ok)
    risk = f"listening on {host} without {missing}: anyone on the network could " + (
        "stream or read sessions" if not token else "read patient audio and transcripts")
    if not insecure:
        raise fail(f"refusing to {risk}. Give --token (or $MEDSTREAM_TOKEN) and "
                   "--ssl-certfile/--ssl-keyfile, or listen on 127.0.0.1 behind a TLS proxy "
                   "(docs/security.md), or pass --insecure to accept the risk")
    return f"WARNING: {risk} (--insecure)"


def _loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _mt_model(name: str | None, device: Device, offline: bool) -> MTModel | None:
    """The server's MT model: ``name``, else the packaged en↔pt pair (interpreter sessions
    between English and Portuguese translate out of the box); None, with a line on stderr,
    when no name is given and the pair is not installed."""
    if name is not None:
        return load_mt_model(name, device=device, allow_download=not offline)
    try:
        mt = load_mt_model(PACKAGED_NAME)
    except MedstreamError as exc:
        stderr.print(f"translation off (no --mt-model, and the packaged pair: {exc})")
        return None
    stderr.print(f"translation: {mt.identifier} (packaged; --mt-model names another)")
    return mt


def stream_command(
    recording: Annotated[Path, typer.Argument(help="Audio file to stream.")],
    url: Annotated[str, typer.Option(help="The server's websocket.")
                   ] = "ws://127.0.0.1:8000/v1/stream",
    speed: Annotated[float, typer.Option(help="1 = real time, N = N times faster.")] = 1.0,
    language: Annotated[str | None, typer.Option(help="Language spoken (default: "
                                                      "identify).")] = None,
    languages: Annotated[str | None, typer.Option(
        help="Interpreter mode: the two parties' languages, e.g. en,es.")] = None,
    translate_to: Annotated[str | None, typer.Option(help="Translate finals into this.")
                            ] = None,
    glossary: Annotated[str | None, typer.Option(help="Glossary id on the server.")] = None,
    entities: Annotated[bool, typer.Option(help="Ask for entities.")] = True,
    partials: Annotated[bool, typer.Option(help="Print partial hypotheses.")] = True,
    output: Annotated[Path | None, typer.Option(
        help="Write every server event as one JSON line, with the client's receive time.")
                      ] = None,
    token: Annotated[str | None, typer.Option(help="Bearer token (default: "
                                                   "$MEDSTREAM_TOKEN).")] = None,
) -> None:
    """Stream a recording to `medstream serve` and print partials and finals."""
    from streaming.live.client import stream_audio

    try:
        audio = load_audio(recording)
    except MedstreamError as exc:
        raise fail(str(exc)) from None
    start = _start_message(entities=entities, languages=languages, language=language,
                           translate_to=translate_to, glossary=glossary)
    show = _printer(partials)
    try:
        result = asyncio.run(stream_audio(url, audio, start, speed=speed,
                                          token=token or os.environ.get("MEDSTREAM_TOKEN"),
                                          on_event=show))
    except (OSError, TimeoutError) as exc:
        raise fail(f"cannot stream to {url}: {exc}") from None
    except Exception as exc:  # websockets' handshake and close errors
        raise fail(f"the server closed or refused the stream: {exc}") from None
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        with output.open("w", encoding="utf-8") as sink:
            for event in result.events:
                sink.write(json.dumps(event, ensure_ascii=False) + "\n")
    if result.close_code not in (1000, None) or not result.of_type("end"):
        raise fail(f"the stream ended without `end` (close code {result.close_code}: "
                   f"{result.close_reason})")


def _start_message(*, entities: bool, languages: str | None, language: str | None,
                   translate_to: str | None, glossary: str | None) -> dict[str, Any]:
    """The session's ``start`` message from the command's options (the ones given)."""
    start: dict[str, Any] = {"entities": entities}
    if languages:
        start["languages"] = [x.strip() for x in languages.split(",") if x.strip()]
    if language:
        start["language"] = language
    if translate_to:
        start["translate_to"] = translate_to
    if glossary:
        start["glossary"] = glossary
    return start


def _printer(partials: bool) -> Callable[[dict[str, Any]], None]:
    """How server events reach the terminal: partials redrawn in place (on a terminal, when
    asked for), finals with their translation on stdout, errors and statuses on stderr."""

    def show(event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "partial" and partials and sys.stdout.isatty():
            sys.stdout.write(f"\r\x1b[2K… {event['text'][-150:]}")
            sys.stdout.flush()
        elif kind == "final":
            if sys.stdout.isatty():
                sys.stdout.write("\r\x1b[2K")
            print(f"[{event['start']:7.2f}-{event['end']:7.2f}] {event['text']}")
            if event.get("translation"):
                print(f"{'':19}→ {event['translation']['text']}")
        elif kind in ("error", "status"):
            stderr.print(json.dumps({k: v for k, v in event.items() if k != "received"}))

    return show
