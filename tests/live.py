"""A live server on a loopback port, run by uvicorn in a thread, for tests and benchmarks."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn

from speech.backends.faster_whisper import FasterWhisperBackend
from streaming.engine import Engine, EngineConfig, Stages
from streaming.server import ServerConfig, create_app


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def live_server(asr: FasterWhisperBackend, stages: Stages | None = None,
                config: ServerConfig | None = None,
                engine_config: EngineConfig | None = None) -> Iterator[str]:
    """Serve on 127.0.0.1; yields the base URL (``http://127.0.0.1:PORT``)."""
    engine = Engine(asr, stages, engine_config, name=asr.identifier)
    app = create_app(engine, asr, config)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           ws_max_size=16 * 1024 * 1024))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
