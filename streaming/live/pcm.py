"""Raw audio frames from a client to 16 kHz mono float32, with streaming resampling."""

from __future__ import annotations

import numpy as np
import soxr

from speech.audio import SAMPLE_RATE

SAMPLE_WIDTH = {"pcm_s16le": 2, "f32le": 4}


class FrameError(ValueError):
    """A frame that cannot be audio in the session's format (the message says why)."""


class PcmDecoder:
    """Decodes the binary frames of one session; keeps the resampler's state between frames."""

    def __init__(self, encoding: str, sample_rate: int) -> None:
        if encoding not in SAMPLE_WIDTH:
            raise FrameError(f"unknown encoding {encoding!r}; use pcm_s16le or f32le")
        self.encoding = encoding
        self.sample_rate = sample_rate
        self.width = SAMPLE_WIDTH[encoding]
        self._resampler = (soxr.ResampleStream(sample_rate, SAMPLE_RATE, 1, dtype="float32")
                           if sample_rate != SAMPLE_RATE else None)
        self.samples_in = 0

    def decode(self, frame: bytes) -> np.ndarray:
        if len(frame) % self.width:
            raise FrameError(f"a {self.encoding} frame must hold whole {self.width}-byte "
                             f"samples; got {len(frame)} bytes")
        if self.encoding == "pcm_s16le":
            samples = np.frombuffer(frame, dtype="<i2").astype(np.float32) / 32768.0
        else:
            samples = np.frombuffer(frame, dtype="<f4").astype(np.float32)
            if not np.isfinite(samples).all():
                raise FrameError("f32le samples must be finite numbers")
            samples = np.clip(samples, -1.0, 1.0)
        self.samples_in += len(samples)
        if self._resampler is not None:
            samples = self._resampler.resample_chunk(samples)
        return np.ascontiguousarray(samples, dtype=np.float32)

    def flush(self) -> np.ndarray:
        """The resampler's last samples, at the end of the stream."""
        if self._resampler is None:
            return np.zeros(0, dtype=np.float32)
        return np.asarray(self._resampler.resample_chunk(np.zeros(0, np.float32), last=True),
                          dtype=np.float32)

    @property
    def seconds_in(self) -> float:
        return self.samples_in / self.sample_rate


def encode_pcm(audio: np.ndarray, encoding: str = "pcm_s16le") -> bytes:
    """16 kHz float32 samples as the bytes a client sends (the inverse of :meth:`decode`)."""
    if encoding == "pcm_s16le":
        return bytes((np.clip(audio, -1.0, 1.0) * 32767.0).astype("<i2").tobytes())
    if encoding == "f32le":
        return bytes(audio.astype("<f4").tobytes())
    raise FrameError(f"unknown encoding {encoding!r}")
