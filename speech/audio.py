"""Audio decoding: any common container/codec to 16 kHz mono float32 through PyAV.

Decoding checks what it gets against what the container's header declares, so that a
truncated or damaged recording is reported (:attr:`DecodedAudio.warning`) instead of being
transcribed silently in part, and it can stop at a length cap before a small compressed file
expands into gigabytes of samples (:class:`AudioTooLongError`).
"""

from __future__ import annotations

import gc
import itertools
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, BinaryIO

import av
import numpy as np

from speech.errors import AudioDecodeError

SAMPLE_RATE = 16_000
"""The sample rate (Hz) every stage of medstream works at."""

AUDIO_EXTENSIONS = frozenset(
    {".wav", ".flac", ".mp3", ".ogg", ".oga", ".opus", ".m4a", ".aac", ".mp4", ".webm", ".mka",
     ".weba", ".wma", ".aiff", ".aif"}
)
"""File extensions picked up when a folder is scanned. A file named explicitly is always tried."""

SHORTFALL_SECONDS = 1.0
"""Decoded audio may fall short of the declared duration by this much, or by
``SHORTFALL_FRACTION`` of it if that is more, before it is reported as truncated (encoder
delay and padding, and headers that estimate, account for a little)."""
SHORTFALL_FRACTION = 0.02

_GROUP_SAMPLES = 500_000
"""Input samples resampled at a time (as faster-whisper's decoder does)."""

logger = logging.getLogger(__name__)


class AudioTooLongError(AudioDecodeError):
    """A recording is longer than the caller accepts (declared by its header, or found while
    decoding); decoding stops there."""

    def __init__(self, path: str, seconds: float, limit: float, declared: bool) -> None:
        self.seconds = seconds
        self.limit = limit
        found = f"its header declares {seconds:.0f} s of audio" if declared else \
            f"it decodes to more than {limit:.0f} s of audio (decoding stopped)"
        super().__init__(path, f"{found}; the limit is {limit:.0f} s")


@dataclass(frozen=True)
class DecodedAudio:
    """A decoded recording and how it compares with what its container declares."""

    samples: np.ndarray
    """16 kHz mono float32, values in [-1, 1]."""
    declared_seconds: float | None
    """The duration the container's header states (None: it states none)."""
    skipped_packets: int = 0
    """Packets the decoder could not read (damaged data), skipped."""

    @property
    def seconds(self) -> float:
        return len(self.samples) / SAMPLE_RATE

    @property
    def truncated(self) -> bool:
        """Less audio decoded than the header declares, beyond the tolerance."""
        declared = self.declared_seconds
        if declared is None:
            return False
        return declared - self.seconds > max(SHORTFALL_SECONDS, SHORTFALL_FRACTION * declared)

    @property
    def warning(self) -> str | None:
        """Why the transcript may be incomplete (truncated or damaged audio), or None."""
        problems = []
        if self.truncated:
            problems.append(f"truncated: decoded {self.seconds:.1f} s of the "
                            f"{self.declared_seconds:.1f} s its header declares")
        if self.skipped_packets:
            problems.append(f"damaged: {self.skipped_packets} packet(s) could not be decoded "
                            "and were skipped")
        return "; ".join(problems) or None


def load_audio(source: str | Path | BinaryIO, name: str | None = None) -> np.ndarray:
    """Decode ``source`` to a 1-D float32 array at 16 kHz mono, values in [-1, 1].

    ``source`` is a path or a binary file object; ``name`` names it in errors when it is not a
    path. Raises :class:`AudioDecodeError` for a missing, empty, corrupt or unsupported file.
    A truncated or damaged one decodes to what can be read: :func:`decode_checked` says so.
    """
    return decode_checked(source, name).samples


def decode_checked(source: str | Path | IO[bytes], name: str | None = None,
                   max_seconds: float | None = None) -> DecodedAudio:
    """Decode ``source`` as :func:`load_audio` does, and compare the result with the
    container's declared duration (:attr:`DecodedAudio.warning`).

    With ``max_seconds``, a recording whose header declares more is refused before decoding,
    and decoding stops as soon as it passes the limit (a header may lie or say nothing):
    :class:`AudioTooLongError`. Memory then stays within the limit's worth of samples.
    """
    label = name or str(source)
    if isinstance(source, str | Path):
        path = Path(source)
        if not path.is_file():
            raise AudioDecodeError(label, "no such file")
        if path.stat().st_size == 0:
            raise AudioDecodeError(label, "the file is empty (0 bytes)")
        source = str(path)
    try:
        decoded = _decode(source, label, max_seconds)
    except (av.error.FFmpegError, StopIteration, IndexError, ValueError) as exc:
        raise AudioDecodeError(label, _describe(exc)) from exc
    audio = decoded.samples
    if audio.size == 0:
        raise AudioDecodeError(label, "it contains no audio samples")
    if not np.isfinite(audio).all():
        raise AudioDecodeError(label, "decoded samples are not finite numbers")
    return decoded


def probe_duration(path: str | Path) -> float | None:
    """The duration of a file in seconds from its container header, without decoding it.

    Returns None when the container does not say (the caller then learns it after decoding).
    """
    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            return _declared_seconds(container)
    except (av.error.FFmpegError, OSError):
        return None


def _declared_seconds(container: av.container.InputContainer) -> float | None:
    if not container.streams.audio:
        return None
    stream = container.streams.audio[0]
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return float(container.duration / av.time_base)
    return None


def _decode(source: str | IO[bytes], label: str, max_seconds: float | None) -> DecodedAudio:
    """PyAV decoding to 16 kHz mono s16, then float32: the samples faster-whisper's
    ``decode_audio`` gives, with the skipped packets counted and the length capped."""
    limit = None if max_seconds is None else round(max_seconds * SAMPLE_RATE)
    resampler = av.audio.resampler.AudioResampler(format="s16", layout="mono",
                                                  rate=SAMPLE_RATE)
    pieces: list[np.ndarray] = []
    total = 0
    skipped = [0]
    try:
        with av.open(source, mode="r", metadata_errors="ignore") as container:
            declared = _declared_seconds(container)
            if max_seconds is not None and declared is not None and declared > max_seconds:
                raise AudioTooLongError(label, declared, max_seconds, declared=True)
            frames = _grouped(_readable(container, skipped))
            for frame in itertools.chain(frames, [None]):  # None flushes the resampler
                for out in resampler.resample(frame):
                    piece = out.to_ndarray().reshape(-1)
                    total += len(piece)
                    if limit is not None and total > limit:
                        raise AudioTooLongError(label, total / SAMPLE_RATE,
                                                limit / SAMPLE_RATE, declared=False)
                    pieces.append(piece)
    except BaseException:
        pieces.clear()  # the error's traceback keeps this frame alive, not the samples
        raise
    # PyAV's resampler holds native buffers until collected (faster-whisper issue 390).
    del resampler
    gc.collect()
    joined = np.concatenate(pieces) if pieces else np.zeros(0, np.int16)
    pieces.clear()
    samples = joined.astype(np.float32) / 32768.0
    return DecodedAudio(np.ascontiguousarray(samples, dtype=np.float32), declared, skipped[0])


def _readable(container: av.container.InputContainer,
              skipped: list[int]) -> Iterator[av.AudioFrame]:
    """The frames of the first audio stream that can be decoded, packet by packet: a damaged
    packet is counted in ``skipped[0]`` and decoding goes on after it (decoding the stream as
    a whole stops at the first one: a file damaged at 16 s of 50 gave 16.2 s, packet by
    packet 49.3 s)."""
    stream = container.streams.audio[0]
    for packet in container.demux(stream):  # the last, empty packet flushes the decoder
        try:
            yield from stream.decode(packet)
        except av.error.InvalidDataError:
            skipped[0] += 1


def _grouped(frames: Iterator[av.AudioFrame]) -> Iterator[av.AudioFrame]:
    fifo = av.audio.fifo.AudioFifo()
    for frame in frames:
        frame.pts = None  # timestamps are not checked
        fifo.write(frame)
        if fifo.samples >= _GROUP_SAMPLES:
            yield from _some(fifo.read())
    if fifo.samples > 0:
        yield from _some(fifo.read())


def _some(frame: av.AudioFrame | None) -> Iterator[av.AudioFrame]:
    if frame is not None:
        yield frame


def _describe(exc: BaseException) -> str:
    if isinstance(exc, av.error.InvalidDataError):
        return "the data is corrupt or not in a supported audio format"
    if isinstance(exc, StopIteration | IndexError):
        return "the file has no audio stream"
    if isinstance(exc, av.error.FFmpegError):
        return f"the decoder failed ({exc.strerror or type(exc).__name__})"
    return str(exc)
