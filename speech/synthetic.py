"""Synthetic speech with espeak-ng, for tests and benchmarks (``apt-get install espeak-ng``;
``scripts/setup.sh`` and ``.ci/run`` install it)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np


class EspeakMissingError(RuntimeError):
    """espeak-ng is not installed."""


def speak(text: str, path: Path, voice: str = "en-us",
          words_per_minute: int | None = None) -> Path:
    """Synthesise ``text`` to the WAV file ``path`` in espeak-ng's ``voice`` (at its default
    rate unless ``words_per_minute`` is given); returns ``path``."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise EspeakMissingError("espeak-ng is not installed (apt-get install espeak-ng)")
    rate = ["-s", str(words_per_minute)] if words_per_minute else []
    subprocess.run([exe, "-v", voice, *rate, "-w", str(path), text], check=True,
                   capture_output=True)
    return path


def trim_silence(audio: np.ndarray, floor: float = 0.01) -> np.ndarray:
    """``audio`` without its leading and trailing samples quieter than ``floor`` (espeak-ng
    pads what it says with silence); empty when all of it is."""
    loud = np.flatnonzero(np.abs(audio) > floor)
    return audio[loud[0]: loud[-1] + 1] if len(loud) else audio[:0]
