"""Synthetic speech helpers (espeak-ng) shared by tests and benchmarks."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from speech import synthetic


def test_trim_silence_keeps_the_loud_part_only() -> None:
    audio = np.array([0.0, 0.005, 0.2, -0.3, 0.0, 0.1, 0.001, 0.0], np.float32)
    assert synthetic.trim_silence(audio).tolist() == pytest.approx([0.2, -0.3, 0.0, 0.1])
    assert len(synthetic.trim_silence(np.zeros(5, np.float32))) == 0


def test_a_missing_espeak_is_a_clear_error(monkeypatch: pytest.MonkeyPatch,
                                           tmp_path: Path) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(synthetic.EspeakMissingError, match="apt-get install espeak-ng"):
        synthetic.speak("hello", tmp_path / "hello.wav")
