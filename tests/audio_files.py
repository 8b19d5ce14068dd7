"""Write test audio in any container/codec with PyAV (the same library that reads it)."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

# extension -> (container format, codec, sample format, sample rate)
ENCODINGS: dict[str, tuple[str, str, str, int]] = {
    ".wav": ("wav", "pcm_s16le", "s16", 44_100),
    ".flac": ("flac", "flac", "s16", 48_000),
    ".mp3": ("mp3", "libmp3lame", "fltp", 44_100),
    ".ogg": ("ogg", "libopus", "flt", 48_000),
    ".opus": ("opus", "libopus", "flt", 48_000),
    ".m4a": ("ipod", "aac", "fltp", 44_100),
    ".aac": ("adts", "aac", "fltp", 22_050),
    ".webm": ("webm", "libopus", "flt", 48_000),
}


def encode(samples: np.ndarray, rate: int, path: Path, channels: int = 2) -> Path:
    """Encode mono float32 ``samples`` at ``rate`` Hz into ``path`` (format from its suffix).

    The signal is resampled to the codec's rate and duplicated to ``channels`` channels, so the
    reader's resampling and down-mixing are exercised too.
    """
    fmt, codec, sample_format, codec_rate = ENCODINGS[path.suffix]
    layout = "stereo" if channels == 2 else "mono"
    with av.open(str(path), "w", format=fmt) as container:
        stream = container.add_stream(codec, rate=codec_rate, layout=layout)
        assert isinstance(stream, av.audio.stream.AudioStream)
        stream.format = sample_format
        # Packed float frames interleave channels: [L0, R0, L1, R1, ...] in one row.
        interleaved = np.repeat(samples.astype(np.float32), channels).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(interleaved, format="flt", layout=layout)
        frame.sample_rate = rate
        resampler = av.AudioResampler(format=sample_format, layout=layout, rate=codec_rate)
        for chunk in [*resampler.resample(frame), *resampler.resample(None)]:
            for packet in stream.encode(chunk):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def silence_flac(seconds: int, declare_length: bool = True) -> bytes:
    """A 16 kHz mono FLAC of ``seconds`` of digital silence: tiny (an hour is 0.66 MB) but
    ``seconds`` long once decoded. Without ``declare_length`` its header does not state the
    length (STREAMINFO's total sample count is 0, "unknown")."""
    import io

    buffer = io.BytesIO()
    with av.open(buffer, "w", format="flac") as container:
        stream = container.add_stream("flac", rate=16_000, layout="mono")
        assert isinstance(stream, av.audio.stream.AudioStream)
        stream.format = "s16"
        block = np.zeros((1, 160_000), np.int16)
        for _ in range(seconds // 10):
            frame = av.AudioFrame.from_ndarray(block, format="s16", layout="mono")
            frame.sample_rate = 16_000
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    data = bytearray(buffer.getvalue())
    if not declare_length:  # the low 36 bits of STREAMINFO bytes 18-25 (after "fLaC" + header)
        data[21] &= 0xF0
        data[22:26] = bytes(4)
    return bytes(data)
