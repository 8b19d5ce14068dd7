"""Voice activity detection on a live stream: Silero VAD fed a few hundred milliseconds at a time.

faster-whisper ships the Silero v6 ONNX model and runs it over whole recordings
(``get_speech_timestamps``). A live stream needs the same model run incrementally: the LSTM
state and the last 64 samples of context are carried from one call to the next, so feeding a
recording in pieces gives the same probabilities as feeding it at once (tested).

:class:`StreamingVAD` turns the probabilities into speech *onsets* and *offsets* with the same
hysteresis as faster-whisper (speech starts above ``threshold``, ends after ``min_silence_ms``
below ``threshold - 0.15``), so a stream cut live and a recording cut in batch agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from faster_whisper.vad import get_vad_model

from speech.audio import SAMPLE_RATE

WINDOW = 512
"""Samples per VAD decision (32 ms at 16 kHz)."""
CONTEXT = 64
"""Samples of the previous window the model sees before each window."""

_model: Any = None


def _session() -> Any:
    global _model
    if _model is None:
        _model = get_vad_model().session
    return _model


@dataclass(frozen=True)
class VadSettings:
    threshold: float = 0.5
    min_silence_ms: int = 500
    """Silence that ends an utterance."""
    speech_pad_ms: int = 400
    """Audio kept before the onset, so the first phoneme is not clipped."""
    min_speech_ms: int = 250
    """Speech shorter than this (a click, a cough) does not open an utterance."""

    @property
    def neg_threshold(self) -> float:
        return max(self.threshold - 0.15, 0.01)


class SpeechProbabilities:
    """Silero speech probability per 512-sample window of a stream fed in arbitrary pieces."""

    def __init__(self) -> None:
        self._h = np.zeros((1, 1, 128), dtype=np.float32)
        self._c = np.zeros((1, 1, 128), dtype=np.float32)
        self._context = np.zeros(CONTEXT, dtype=np.float32)
        self._pending = np.zeros(0, dtype=np.float32)

    def __call__(self, samples: np.ndarray) -> np.ndarray:
        """Probabilities of the whole windows completed by ``samples`` (possibly none)."""
        audio = np.concatenate([self._pending, samples.astype(np.float32, copy=False)])
        count = len(audio) // WINDOW
        self._pending = audio[count * WINDOW:]
        if count == 0:
            return np.zeros(0, dtype=np.float32)
        windows = audio[: count * WINDOW].reshape(count, WINDOW)
        contexts = np.concatenate([self._context[None, :], windows[:-1, -CONTEXT:]])
        self._context = windows[-1, -CONTEXT:].copy()
        batch = np.concatenate([contexts, windows], axis=1)
        out, self._h, self._c = _session().run(None, {"input": batch, "h": self._h,
                                                       "c": self._c})
        return np.asarray(out, dtype=np.float32).reshape(-1)


@dataclass(frozen=True)
class VadEvent:
    """An utterance boundary, in samples on the stream's clock."""

    kind: str
    """``onset`` (speech began at ``sample``, padding included), ``offset`` (it ended), or
    ``pause``: a dip inside speech, from ``sample`` to ``until``, shorter than the silence that
    ends speech (the speaker went on)."""
    sample: int
    until: int | None = None
    """Where a ``pause`` ends (speech resumed); None for the other kinds."""
    silence: int | None = None
    """For an ``offset``: where the silence that ended speech began (the offset is this plus
    the speech padding); None for the other kinds."""


class StreamingVAD:
    """Speech onsets and offsets of a live stream, with faster-whisper's hysteresis."""

    def __init__(self, settings: VadSettings | None = None) -> None:
        self.settings = settings or VadSettings()
        self._probabilities = SpeechProbabilities()
        self._windows = 0
        self.in_speech = False
        self._candidate: int | None = None  # window where speech may have begun
        self._silence_from: int | None = None  # window where the current silence began
        self.last_probability = 0.0

    @property
    def position(self) -> int:
        """Samples decided so far."""
        return self._windows * WINDOW

    @property
    def silent_since(self) -> int | None:
        """Stream sample where the silence heard last began, while speech is open and has not
        resumed after it (a dip not yet ``min_silence_ms`` long: an end of speech, or a pause);
        None otherwise."""
        if not self.in_speech or self._silence_from is None:
            return None
        return self._silence_from * WINDOW

    def feed(self, samples: np.ndarray) -> list[VadEvent]:
        events: list[VadEvent] = []
        s = self.settings
        min_silence = max(1, round(s.min_silence_ms * SAMPLE_RATE / 1000 / WINDOW))
        min_speech = max(1, round(s.min_speech_ms * SAMPLE_RATE / 1000 / WINDOW))
        pad = round(s.speech_pad_ms * SAMPLE_RATE / 1000)
        for probability in self._probabilities(samples):
            index = self._windows
            self._windows += 1
            p = float(probability)
            self.last_probability = p
            if not self.in_speech:
                # As in batch mode: speech begins at a window above the threshold and goes on
                # through dips shorter than min_silence; it opens an utterance once it has
                # lasted min_speech (a short "OK" with a dip in the middle counts).
                if p >= s.threshold and self._candidate is None:
                    self._candidate = index
                if self._candidate is None:
                    continue
                if p < s.neg_threshold:
                    if self._silence_from is None:
                        self._silence_from = index
                    if index - self._silence_from + 1 >= min_silence:
                        self._candidate = self._silence_from = None
                    continue
                self._silence_from = None
                if index - self._candidate + 1 >= min_speech:
                    self.in_speech = True
                    events.append(VadEvent("onset", max(0, self._candidate * WINDOW - pad)))
                continue
            event = self._speech_window(index, p, min_silence, pad)
            if event is not None:
                events.append(event)
        return events

    def _speech_window(self, index: int, p: float, min_silence: int, pad: int
                       ) -> VadEvent | None:
        """Window ``index`` (probability ``p``) heard in speech: a ``pause`` where speech
        resumes after a dip, an ``offset`` where the dip reaches ``min_silence`` windows."""
        s = self.settings
        if p >= s.threshold:
            started, self._silence_from = self._silence_from, None
            if started is not None:
                return VadEvent("pause", started * WINDOW, index * WINDOW)
        elif p < s.neg_threshold:
            if self._silence_from is None:
                self._silence_from = index
            if index - self._silence_from + 1 >= min_silence:
                self.in_speech = False
                self._candidate = None
                end = min(self._silence_from * WINDOW + pad, self._windows * WINDOW)
                return VadEvent("offset", end, silence=self._silence_from * WINDOW)
        return None
