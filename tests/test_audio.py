"""Audio loading: every supported container to 16 kHz mono float32, and clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from speech.audio import SAMPLE_RATE, load_audio, probe_duration
from speech.errors import AudioDecodeError
from tests.audio_files import ENCODINGS, encode
from tests.conftest import SPEECH


def _tone(seconds: float, rate: int = 44_100, hz: float = 440.0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.5 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


@pytest.mark.parametrize("suffix", sorted(ENCODINGS))
def test_every_supported_format_decodes_to_16k_mono(tmp_path: Path, suffix: str) -> None:
    path = encode(_tone(2.0), 44_100, tmp_path / f"tone{suffix}")
    audio = load_audio(path)
    assert audio.dtype == np.float32 and audio.ndim == 1
    # Lossy codecs add encoder delay/padding; raw ADTS AAC has no edit list to trim its 2048
    # priming samples (93 ms at 22.05 kHz). Beyond that the length must be 2 s.
    assert len(audio) / SAMPLE_RATE == pytest.approx(2.0, abs=0.1)
    # The 440 Hz tone survives resampling and down-mixing: its spectrum peaks at 440 Hz.
    spectrum = np.abs(np.fft.rfft(audio))
    assert np.fft.rfftfreq(len(audio), 1 / SAMPLE_RATE)[spectrum.argmax()] == \
        pytest.approx(440, abs=3)


def test_real_recordings_of_each_shared_format() -> None:
    files = [SPEECH / "jfk_inaugural/jfk.flac", SPEECH / "fleurs_cuttledoc/fleurs-de-000.ogg",
             SPEECH / "mfa_test_data/13697_11991_000000.opus",
             SPEECH / "fareez_osce_en/audio/CAR0002.mp3",
             SPEECH / "pocketsphinx_testdata/goforward.wav"]
    if not files[0].is_file():
        pytest.skip(f"{SPEECH} is absent")
    for path in files:
        audio = load_audio(path)
        header = probe_duration(path)
        assert header is not None
        assert len(audio) / SAMPLE_RATE == pytest.approx(header, abs=0.1), path


def test_missing_file_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(AudioDecodeError, match=r"nothing\.wav: no such file"):
        load_audio(tmp_path / "nothing.wav")


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.mp3"
    path.touch()
    with pytest.raises(AudioDecodeError, match=r"empty\.mp3: the file is empty"):
        load_audio(path)


def test_text_file_is_not_audio(tmp_path: Path) -> None:
    path = tmp_path / "notes.wav"
    path.write_text("Patient denies chest pain. " * 50)
    with pytest.raises(AudioDecodeError, match=r"notes\.wav: the data is corrupt or not in a "
                                               r"supported audio format"):
        load_audio(path)


def test_random_bytes_are_not_audio(tmp_path: Path) -> None:
    path = tmp_path / "noise.m4a"
    path.write_bytes(np.random.default_rng(0).bytes(20_000))
    with pytest.raises(AudioDecodeError, match=r"noise\.m4a"):
        load_audio(path)


def test_truncated_file(tmp_path: Path) -> None:
    whole = encode(_tone(3.0), 44_100, tmp_path / "whole.flac")
    cut = tmp_path / "cut.flac"
    cut.write_bytes(whole.read_bytes()[:200])
    with pytest.raises(AudioDecodeError, match=r"cut\.flac"):
        load_audio(cut)


def test_file_object_errors_use_the_given_name(tmp_path: Path) -> None:
    path = tmp_path / "upload.bin"
    path.write_bytes(b"\x00" * 4000)
    with path.open("rb") as handle, pytest.raises(AudioDecodeError, match="upload-42"):
        load_audio(handle, name="upload-42")


def test_probe_of_non_audio_is_none(tmp_path: Path) -> None:
    path = tmp_path / "x.ogg"
    path.write_text("not audio")
    assert probe_duration(path) is None
