"""A live server on a loopback port for the tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from speech.backends.faster_whisper import FasterWhisperBackend
from streaming.live.engine import Engine, EngineConfig, Stages
from streaming.live.server import ServerConfig, serve_in_thread


@contextmanager
def live_server(asr: FasterWhisperBackend, stages: Stages | None = None,
                config: ServerConfig | None = None,
                engine_config: EngineConfig | None = None) -> Iterator[str]:
    """Serve on 127.0.0.1 with a fresh engine; yields the base URL (``http://127.0.0.1:PORT``)."""
    engine = Engine(asr, stages, engine_config, name=asr.identifier)
    with serve_in_thread(engine, asr, config) as base:
        yield base
