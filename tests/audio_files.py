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
