"""Audio decoding: any common container/codec to 16 kHz mono float32 through PyAV."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import BinaryIO

import av
import numpy as np
from faster_whisper.audio import decode_audio

from speech.errors import AudioDecodeError

SAMPLE_RATE = 16_000
"""The sample rate (Hz) every stage of medstream works at."""

AUDIO_EXTENSIONS = frozenset(
    {".wav", ".flac", ".mp3", ".ogg", ".oga", ".opus", ".m4a", ".aac", ".mp4", ".webm", ".mka",
     ".weba", ".wma", ".aiff", ".aif"}
)
"""File extensions picked up when a folder is scanned. A file named explicitly is always tried."""

logger = logging.getLogger(__name__)


def load_audio(source: str | Path | BinaryIO, name: str | None = None) -> np.ndarray:
    """Decode ``source`` to a 1-D float32 array at 16 kHz mono, values in [-1, 1].

    ``source`` is a path or a binary file object; ``name`` names it in errors when it is not a
    path. Raises :class:`AudioDecodeError` for a missing, empty, corrupt or unsupported file.
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
        audio = decode_audio(source, sampling_rate=SAMPLE_RATE)
    except (av.error.FFmpegError, StopIteration, IndexError, ValueError) as exc:
        raise AudioDecodeError(label, _describe(exc)) from exc
    if audio.size == 0:
        raise AudioDecodeError(label, "it contains no audio samples")
    if not np.isfinite(audio).all():
        raise AudioDecodeError(label, "decoded samples are not finite numbers")
    return np.ascontiguousarray(audio, dtype=np.float32)


def probe_duration(path: str | Path) -> float | None:
    """The duration of a file in seconds from its container header, without decoding it.

    Returns None when the container does not say (the caller then learns it after decoding).
    """
    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            if not container.streams.audio:
                return None
            stream = container.streams.audio[0]
            if stream.duration is not None and stream.time_base is not None:
                return float(stream.duration * stream.time_base)
            if container.duration is not None:
                return container.duration / av.time_base
    except (av.error.FFmpegError, OSError):
        return None
    return None


def _describe(exc: BaseException) -> str:
    if isinstance(exc, av.error.InvalidDataError):
        return "the data is corrupt or not in a supported audio format"
    if isinstance(exc, StopIteration | IndexError):
        return "the file has no audio stream"
    if isinstance(exc, av.error.FFmpegError):
        return f"the decoder failed ({exc.strerror or type(exc).__name__})"
    return str(exc)
