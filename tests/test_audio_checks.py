"""The decode check of speech.audio: truncated and damaged recordings are reported with both
durations, and a length cap stops a small file from decoding into gigabytes."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

from speech.audio import (
    AudioTooLongError,
    DecodedAudio,
    decode_checked,
    load_audio,
    probe_duration,
)
from speech.errors import AudioDecodeError
from tests.audio_files import encode, silence_flac
from tests.conftest import REPO, SPEECH

MP3 = REPO / "samples" / "osce_car0001_50s.mp3"
FLAC = SPEECH / "jfk_inaugural" / "jfk.flac"


def test_an_intact_recording_has_no_warning_and_the_samples_load_audio_gives() -> None:
    decoded = decode_checked(MP3)
    assert decoded.warning is None and not decoded.truncated and decoded.skipped_packets == 0
    assert decoded.declared_seconds == pytest.approx(50.0, abs=0.1)
    assert decoded.seconds == pytest.approx(decoded.declared_seconds, abs=0.1)
    assert np.array_equal(decoded.samples, load_audio(MP3))


@pytest.mark.parametrize("source", [MP3, FLAC], ids=["mp3", "flac"])
def test_a_truncated_file_decodes_what_is_there_and_says_both_durations(source: Path) -> None:
    data = source.read_bytes()
    decoded = decode_checked(io.BytesIO(data[:len(data) // 2]), name="half")
    whole = probe_duration(source)
    assert whole is not None
    assert decoded.declared_seconds == pytest.approx(whole, abs=0.1)
    assert 0.4 * whole < decoded.seconds < 0.6 * whole
    assert decoded.truncated and decoded.warning is not None
    assert f"decoded {decoded.seconds:.1f} s of the {whole:.1f} s" in decoded.warning


def test_a_damaged_packet_is_skipped_and_decoding_goes_on() -> None:
    data = MP3.read_bytes()
    third = len(data) // 3
    damaged = data[:third] + bytes(4096) + data[third + 4096:]
    decoded = decode_checked(io.BytesIO(damaged), name="damaged")
    assert decoded.skipped_packets >= 1
    assert decoded.warning is not None and "damaged" in decoded.warning
    assert decoded.seconds > 45  # not just the 16 s before the damage


def test_the_warning_needs_a_shortfall_beyond_the_tolerance() -> None:
    samples = np.zeros(16_000 * 100, np.float32)
    assert DecodedAudio(samples, 100.9).warning is None  # encoder padding and estimates
    assert DecodedAudio(samples, None).warning is None  # nothing declared, nothing to compare
    assert DecodedAudio(samples, 103.0).truncated  # 3 s short of 103 s: over 2 %


def test_an_hour_of_silence_is_refused_by_its_header_before_decoding() -> None:
    flac = silence_flac(3600)
    assert len(flac) < 1_000_000
    with pytest.raises(AudioTooLongError, match="declares 3600 s") as caught:
        decode_checked(io.BytesIO(flac), name="silence", max_seconds=1800)
    assert caught.value.limit == 1800


def test_decoding_stops_at_the_cap_when_the_header_states_no_length() -> None:
    flac = silence_flac(600, declare_length=False)
    with pytest.raises(AudioTooLongError, match="more than 60 s"):
        decode_checked(io.BytesIO(flac), name="silence", max_seconds=60)
    assert decode_checked(io.BytesIO(flac), name="silence").seconds == pytest.approx(600)


def test_under_the_cap_decodes_normally(tmp_path: Path) -> None:
    tone = np.sin(np.arange(16_000 * 2) / 16_000 * 2 * np.pi * 440).astype(np.float32) * 0.3
    path = encode(tone, 16_000, tmp_path / "tone.flac")
    decoded = decode_checked(path, max_seconds=5)
    assert decoded.seconds == pytest.approx(2.0, abs=0.05) and decoded.warning is None


def test_garbage_is_still_an_error() -> None:
    with pytest.raises(AudioDecodeError, match="garbage"):
        decode_checked(io.BytesIO(b"not audio at all" * 100), name="garbage", max_seconds=60)
