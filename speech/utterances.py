"""A live stream cut into utterances by the VAD: what every live recogniser builds on.

:class:`UtteranceGate` takes 16 kHz audio as it arrives and keeps it in *utterances*: an
utterance opens at a speech onset of :class:`~speech.vad.StreamingVAD` (with up to a second of
the audio before it, so the VAD's padding is there) and closes after ``min_silence_ms`` of
silence or when the stream finishes. Audio outside utterances is dropped after a second:
silence and noise never reach a recogniser. Subclasses decide how utterances are decoded
(:class:`speech.online.OnlineTranscriber` for Whisper, the NeMo streaming backend for
cache-aware models).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

from speech.audio import SAMPLE_RATE
from speech.vad import StreamingVAD, VadEvent, VadSettings

PREROLL_SAMPLES = SAMPLE_RATE
"""Audio kept before an onset: a second is more than the VAD's speech padding."""


@dataclass
class Utterance:
    number: int
    start: int
    """Sample on the stream clock where the buffer starts."""
    chunks: list[np.ndarray] = field(default_factory=list)
    samples: int = 0
    end: int | None = None
    """Sample where the VAD closed it; None while open."""
    silent_from: int | None = None
    """Sample where the silence that closed it began (the VAD's offset); None while open, or
    when the end of the stream closed it."""
    pauses: list[tuple[int, int]] = field(default_factory=list)
    """Pauses of at least the gate's ``pause_end`` the VAD heard in it while open (stream
    samples where each began and ended)."""

    def append(self, samples: np.ndarray) -> None:
        self.chunks.append(samples)
        self.samples += len(samples)

    def audio(self, limit: int | None = None) -> np.ndarray:
        if len(self.chunks) != 1:
            self.chunks = [np.concatenate(self.chunks)] if self.chunks else [
                np.zeros(0, np.float32)]
        return self.chunks[0][:limit] if limit is not None else self.chunks[0]


class UtteranceGate:
    """VAD-gated utterances of one live stream (not thread-safe: one caller at a time, but
    :meth:`listen` touches only the VAD and may run beside the others)."""

    def __init__(self, vad: VadSettings, pause_end: float | None = None) -> None:
        self.vad = StreamingVAD(vad)
        self.pause_end = pause_end
        """Seconds a pause inside an utterance must last to be kept in its ``pauses``
        (None: none is kept)."""
        self.received = 0
        """Samples received."""
        self.finished = False
        self.finals = 0
        self._preroll: deque[np.ndarray] = deque()
        self._preroll_samples = 0
        self._open: Utterance | None = None
        self._closed: deque[Utterance] = deque()
        self._numbers = 0
        self._busy = False
        self._decoded_until = 0
        self._routed = 0
        """Samples routed to an utterance or the preroll (the rest of a piece is pending)."""
        self._heard: deque[tuple[int, list[VadEvent]]] = deque()
        """Length and VAD events of each piece heard (:meth:`listen`) and not accepted yet."""

    def _new_utterance(self, number: int, onset: int) -> Utterance:
        return Utterance(number, onset)

    # -- audio in ---------------------------------------------------------------------------
    def listen(self, samples: np.ndarray) -> None:
        """Run the VAD over the next piece of the stream ahead of :meth:`accept`, which then
        only routes it by what was heard.

        The VAD is the costly part of taking audio in (Silero, every 32 ms of it) and uses
        nothing but its own state, so a server runs this outside the lock that serialises the
        other calls, and off its event loop. Pieces are heard one at a time, in order, and
        accepted in the same order; a piece accepted without being heard is heard then.
        """
        piece = _piece(samples)
        if len(piece):
            self._heard.append((len(piece), self.vad.feed(piece)))

    def accept(self, samples: np.ndarray) -> None:
        """Add 16 kHz mono float32 samples to the stream."""
        if self.finished:
            raise RuntimeError("the stream was finished; no more audio can be added")
        samples = _piece(samples)
        if len(samples) == 0:
            return
        if self._heard:
            heard, events = self._heard.popleft()
            if heard != len(samples):
                raise ValueError(f"a piece of {len(samples)} samples accepted where one of "
                                 f"{heard} was heard: accept pieces in the order heard")
        else:
            events = self.vad.feed(samples)
        begin = self.received
        self.received += len(samples)
        position = begin
        for event in events:
            # The VAD decides in windows; events may refer to samples before this piece.
            upto = max(position, min(event.sample, self.received))
            self._route(samples[position - begin: upto - begin], position)
            position = upto
            if event.kind == "onset":
                self._open_utterance(event.sample)
            elif event.kind == "pause":
                if self._open is not None and event.until is not None:
                    self._paused(event.sample, event.until)
            elif self._open is not None:
                self._open.silent_from = event.silence
                self._close(event.sample)
        self._route(samples[position - begin:], position)
        if self._open is None and not self._closed and not self._busy:
            self._decoded_until = self.received

    def finish(self) -> None:
        """The stream ended: the open utterance is closed and decoded as a final."""
        if self._open is not None:
            self._close(self.received)
        self.finished = True

    def _route(self, samples: np.ndarray, at: int) -> None:
        if len(samples) == 0:
            return
        self._routed = at + len(samples)
        if self._open is not None:
            self._open.append(samples)
            return
        self._preroll.append(samples)
        self._preroll_samples += len(samples)
        while self._preroll and self._preroll_samples - len(self._preroll[0]) >= PREROLL_SAMPLES:
            self._preroll_samples -= len(self._preroll.popleft())

    def _open_utterance(self, onset: int) -> None:
        utterance = self._new_utterance(self._numbers, onset)
        self._numbers += 1
        # Samples of this piece before the onset are in the preroll already (routed above);
        # the rest of the piece is not: the preroll ends where routing stopped.
        start_of_preroll = self._routed - self._preroll_samples
        if self._preroll:
            preroll = np.concatenate(list(self._preroll))
            utterance.start = max(onset, start_of_preroll)
            utterance.append(preroll[utterance.start - start_of_preroll:])
        self._preroll.clear()
        self._preroll_samples = 0
        self._open = utterance

    def _paused(self, start: int, end: int) -> bool:
        """The open utterance's speaker paused from sample ``start`` to ``end`` and went on
        (shorter than the silence that closes an utterance): a pause of at least
        ``pause_end`` is kept in its ``pauses``, and True says so (a subclass may cut there)."""
        if self._open is None or self.pause_end is None \
                or end - start < self.pause_end * SAMPLE_RATE:
            return False
        self._open.pauses.append((start, end))
        return True

    def _close(self, end: int) -> None:
        assert self._open is not None
        utterance = self._open
        utterance.end = max(utterance.start, min(end, utterance.start + utterance.samples))
        self._open = None
        # Samples after the offset go back to the preroll of the next utterance.
        tail = utterance.audio()[utterance.end - utterance.start:]
        utterance.chunks = [utterance.audio()[: utterance.end - utterance.start]]
        utterance.samples = utterance.end - utterance.start
        if utterance.samples > 0:
            self._closed.append(utterance)
        self._route(tail, utterance.end)

    # -- state ------------------------------------------------------------------------------
    @property
    def backlog(self) -> float:
        """Seconds of received audio whose words have not been decoded yet."""
        return (self.received - self._decoded_until) / SAMPLE_RATE

    @property
    def done(self) -> bool:
        """Finished, and every utterance has had its final."""
        return self.finished and self._open is None and not self._closed and not self._busy

    @property
    def busy(self) -> bool:
        """A job of this stream is being decoded."""
        return self._busy


def _piece(samples: np.ndarray) -> np.ndarray:
    return np.asarray(samples, dtype=np.float32).reshape(-1)
