"""Two `medstream serve` replicas behind HAProxy, with the configuration the docs ship
(docs/deploy/haproxy.cfg): a full replica is taken out of rotation through /healthz, each
session stays with the replica that holds its websocket, and a replica that dies is routed
around."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from speech.audio import load_audio
from streaming.live.pcm import encode_pcm
from tests.conftest import REPO, SPEECH

CONFIG = REPO / "docs" / "deploy" / "haproxy.cfg"
JFK = SPEECH / "jfk_inaugural" / "jfk.flac"
HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _wait_healthy(url: str, process: subprocess.Popen[bytes], seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"{process.args!r} exited with {process.returncode}")
        try:
            if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"{url} did not become healthy in {seconds} s")


def _health(port: int) -> dict[str, Any]:
    return dict(httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).json())


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[int, list[int], list[subprocess.Popen[bytes]]]]:
    """Two replicas (tiny.en, one session each) and HAProxy in front: (front port, replica
    ports, replica processes)."""
    if not Path(HAPROXY).exists():
        if os.environ.get("CI"):
            pytest.fail("haproxy is missing: scripts/setup.sh installs it")
        pytest.skip("haproxy is not installed")
    if not JFK.is_file():
        pytest.skip(f"{JFK} is absent")
    front, *replica_ports = _free_ports(3)
    medstream = [str(Path(sys.executable).with_name("medstream"))]
    replicas = [subprocess.Popen([*medstream, "serve", "--model", "tiny.en", "--port", str(p),
                                  "--max-sessions", "1", "--offline"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                for p in replica_ports]
    config = CONFIG.read_text(encoding="utf-8")
    config = config.replace("127.0.0.1:8000", f"127.0.0.1:{front}")
    for default, port in zip((8001, 8002), replica_ports, strict=True):
        config = config.replace(f"127.0.0.1:{default}", f"127.0.0.1:{port}")
    (tmp_path / "haproxy.cfg").write_text(config, encoding="utf-8")
    balancer = None
    try:
        for port, process in zip(replica_ports, replicas, strict=True):
            _wait_healthy(f"http://127.0.0.1:{port}", process)
        balancer = subprocess.Popen([HAPROXY, "-f", str(tmp_path / "haproxy.cfg"), "-db"],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_healthy(f"http://127.0.0.1:{front}", balancer, 30)
        yield front, replica_ports, replicas
    finally:
        for process in [*replicas, *([balancer] if balancer else [])]:
            process.terminate()
        for process in [*replicas, *([balancer] if balancer else [])]:
            process.wait(30)


async def _open(url: str) -> tuple[Any, dict[str, Any]]:
    ws = await websockets.connect(url, max_size=None, open_timeout=30)
    await ws.send(json.dumps({"type": "start", "sample_rate": 16000, "encoding": "pcm_s16le",
                              "language": "en"}))
    return ws, json.loads(await ws.recv())


async def _speak(ws: Any) -> str:
    """Send the JFK clip as fast as the server takes it, then stop; the finals' text."""
    audio = load_audio(JFK)
    step = 1600
    for begin in range(0, len(audio), step):
        await ws.send(encode_pcm(audio[begin:begin + step]))
    await ws.send(json.dumps({"type": "stop"}))
    finals = []
    async for raw in ws:
        event = json.loads(raw)
        if event["type"] == "final":
            finals.append(event["text"])
        if event["type"] == "end":
            break
    await ws.close()
    return " ".join(finals)


async def _wait_out_of_rotation() -> None:
    # inter 1s fall 2: two failed checks take the full replica out.
    await asyncio.sleep(3.5)


def test_sessions_spread_over_replicas_and_survive_a_dead_one(cluster: Any) -> None:
    front, ports, replicas = cluster
    url = f"ws://127.0.0.1:{front}/v1/stream"

    async def scenario() -> tuple[str, str, list[dict[str, Any]], dict[str, Any]]:
        first, ready_first = await _open(url)
        assert ready_first["type"] == "ready", ready_first
        await _wait_out_of_rotation()
        second, ready_second = await _open(url)
        assert ready_second["type"] == "ready", ready_second
        # One session each: the full replica was out of rotation for the second.
        during = [_health(port) for port in ports]
        texts = await asyncio.gather(_speak(first), _speak(second))
        return texts[0], texts[1], during, ready_second

    text_a, text_b, during, _ = asyncio.run(scenario())
    assert [h["sessions"] for h in during] == [1, 1]
    assert [h["ready"] for h in during] == [False, False]
    for text in (text_a, text_b):
        assert "ask not what your country can do for you" in text.lower()

    # Both replicas are free again; once HAProxy has seen that (one good check), replica 1
    # dies. Before HAProxy notices, a new session may be sent to it: the refused connection
    # is redispatched to replica 2.
    deadline = time.monotonic() + 30
    while not all(_health(port)["ready"] for port in ports) and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(2.5)
    replicas[0].terminate()
    replicas[0].wait(30)

    async def after_failure() -> str:
        ws, ready = await _open(url)
        assert ready["type"] == "ready", ready
        return await _speak(ws)

    assert "your country" in asyncio.run(after_failure()).lower()
    assert _health(ports[1])["sessions"] == 0
