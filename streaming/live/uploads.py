"""Bounds on ``POST /v1/transcribe``: bytes, decoded duration, concurrency and receiving time.

An upload is refused by its ``Content-Length`` before any of it is read (413); its body is
then streamed to an unnamed temporary file (unlinked as soon as it is created, so no other
process can open it by name and nothing is left behind) with a running byte count, never held
in memory whole; decoding stops at a duration cap
(:func:`speech.audio.decode_checked`), so a small compressed file cannot expand into
gigabytes of samples; and at most ``max_concurrent`` uploads are received, decoded and
recognised at once: the others are refused at once (503 with ``Retry-After``) rather than
queued, since a queue would hold their connections and bodies.

Memory per server for uploads is then at most ``max_concurrent`` times the decoded cap
(4 bytes per sample at 16 kHz: 115 MB for 30 min) plus the recogniser's working memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import IO

RETRY_AFTER_SECONDS = 10
"""What a refused upload is told to wait (``Retry-After``) before trying again."""


class UploadRefusedError(Exception):
    """An upload this server will not take: the HTTP status, a message for the client and
    the headers to send with it."""

    def __init__(self, status: int, message: str,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers


@dataclass(frozen=True)
class UploadLimits:
    max_bytes: int
    """Largest body (bytes): a larger ``Content-Length``, or body, gets 413."""
    max_seconds: float
    """Longest recording (seconds of audio, declared or decoded): longer gets 413."""
    max_concurrent: int
    """Uploads received, decoded and recognised at once: more get 503 with Retry-After."""
    receive_seconds: float
    """Longest time to receive a body: a slower client gets 408 (it holds a slot)."""

    def __post_init__(self) -> None:
        if self.max_bytes < 1 or self.max_seconds <= 0 or self.max_concurrent < 1 \
                or self.receive_seconds <= 0:
            raise ValueError("upload limits must be positive (max_concurrent at least 1)")


class UploadSlots:
    """At most ``limit`` uploads at once (used on the event loop only: no lock needed)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.busy = 0

    @contextlib.contextmanager
    def take(self) -> Iterator[None]:
        """Hold a slot for the block; :class:`UploadRefusedError` (503) when none is free."""
        if self.busy >= self.limit:
            raise UploadRefusedError(
                503, f"the server is transcribing {self.limit} upload(s), its limit: retry "
                f"in {RETRY_AFTER_SECONDS} s", {"Retry-After": str(RETRY_AFTER_SECONDS)})
        self.busy += 1
        try:
            yield
        finally:
            self.busy -= 1


def check_content_length(header: str | None, max_bytes: int) -> None:
    """Refuse a declared body over ``max_bytes`` (413) or a malformed length (400) before
    reading any of it. No header (a chunked body) passes: the running count catches it."""
    if header is None:
        return
    if not header.isdigit() or len(header) > 20:
        raise UploadRefusedError(400, "Content-Length is not a byte count")
    if int(header) > max_bytes:
        raise UploadRefusedError(413, f"the upload of {header} bytes is over the limit of "
                                 f"{max_bytes} bytes")


async def spool(body: AsyncIterator[bytes], limits: UploadLimits) -> IO[bytes]:
    """The request body in an unnamed temporary file, positioned at its start.

    Raises :class:`UploadRefusedError`: 413 as soon as the body passes ``limits.max_bytes``
    (nothing more is read), 408 when receiving it takes over ``limits.receive_seconds``,
    400 when it is empty. The caller closes the file (which deletes it)."""
    file = tempfile.TemporaryFile(prefix="medstream-upload-")  # noqa: SIM115 (returned)
    try:
        async with asyncio.timeout(limits.receive_seconds):
            received = await _copy(body, file, limits.max_bytes)
    except TimeoutError:
        file.close()
        raise UploadRefusedError(408, f"the upload took over {limits.receive_seconds:g} s to "
                                 "arrive") from None
    except BaseException:
        file.close()
        raise
    if received == 0:
        file.close()
        raise UploadRefusedError(400, "the request body is empty: send the audio file as body")
    file.seek(0)
    return file


async def _copy(body: AsyncIterator[bytes], file: IO[bytes], max_bytes: int) -> int:
    received = 0
    async for chunk in body:
        received += len(chunk)
        if received > max_bytes:
            raise UploadRefusedError(413, f"the upload is over the limit of {max_bytes} bytes")
        file.write(chunk)
    return received
