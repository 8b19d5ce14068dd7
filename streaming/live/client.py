"""A websocket client that streams a recording to ``medstream serve`` at real-time pace.

Used by ``medstream stream``, the tests and the latency benchmark. Every server event is kept
with ``received``: seconds since the first audio frame was sent, on the client's clock. At
``speed`` 1 that is the audio clock; at ``speed`` N, multiply by N to get it.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np
import websockets

from speech.audio import SAMPLE_RATE
from streaming.live.pcm import encode_pcm

FRAME_SECONDS = 0.1


@dataclass
class StreamResult:
    events: list[dict[str, Any]] = field(default_factory=list)
    close_code: int | None = None
    close_reason: str = ""

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("type") == kind]

    @property
    def text(self) -> str:
        return " ".join(e["text"] for e in self.of_type("final"))


async def stream_audio(url: str, audio: np.ndarray, start: dict[str, Any] | None = None, *,
                       speed: float = 1.0, token: str | None = None,
                       frame_seconds: float = FRAME_SECONDS,
                       on_event: Callable[[dict[str, Any]], None] | None = None,
                       timeout: float = 600.0) -> StreamResult:
    """Send ``audio`` (16 kHz float32) as pcm_s16le frames, then ``stop``; collect events.

    ``token`` goes in the ``Authorization`` header, never in the URL (the server refuses
    ``?token=``: URLs end up in logs)."""
    if speed <= 0:
        raise ValueError("speed must be positive")
    if "token" in parse_qs(urlsplit(url).query):
        raise ValueError("give the token as token=, not in the URL (URLs end up in logs)")
    headers = {"Authorization": f"Bearer {token}"} if token else None
    result = StreamResult()
    message = {"type": "start", "sample_rate": SAMPLE_RATE, "encoding": "pcm_s16le",
               **(start or {})}
    async with websockets.connect(url, additional_headers=headers, max_size=None,
                                  open_timeout=30) as ws:
        await ws.send(json.dumps(message))
        clock: list[float] = []

        async def receive() -> None:
            async for raw in ws:
                event = json.loads(raw)
                event["received"] = (time.perf_counter() - clock[0]) if clock else 0.0
                result.events.append(event)
                if on_event is not None:
                    on_event(event)
                if event.get("type") == "error" and event.get("fatal"):
                    continue

        receiver = asyncio.create_task(receive())
        ready = await _wait_for(result, {"ready", "error"}, timeout=60)
        if ready is None or ready["type"] != "ready":
            await ws.close()
            await receiver
            return _closed(result, ws)
        step = int(frame_seconds * SAMPLE_RATE)
        clock.append(time.perf_counter())
        for index, begin in enumerate(range(0, len(audio), step)):
            due = clock[0] + index * frame_seconds / speed
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            await ws.send(encode_pcm(audio[begin:begin + step]))
        await ws.send(json.dumps({"type": "stop"}))
        try:
            await asyncio.wait_for(receiver, timeout)
        except TimeoutError:
            await ws.close()
    return _closed(result, ws)


def _closed(result: StreamResult, ws: Any) -> StreamResult:
    result.close_code = ws.close_code
    result.close_reason = ws.close_reason or ""
    return result


async def _wait_for(result: StreamResult, kinds: set[str], timeout: float
                    ) -> dict[str, Any] | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for event in result.events:
            if event.get("type") in kinds:
                return event
        await asyncio.sleep(0.01)
    return None
