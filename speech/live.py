"""What the live engine needs from a recogniser, and the Whisper implementation of it.

A live recogniser opens one :class:`LiveStream` per client. A stream takes audio as it arrives
and hands out *jobs* (work for the model, never run by the stream itself); the recogniser's
:meth:`LiveRecogniser.decode` runs a list of jobs from any number of streams in as few model
calls as it can, and each result goes back to its stream, which turns it into partial and final
:class:`~speech.online.StreamUpdate` s. The engine's scheduler decides whose jobs run when.

Two implementations: :class:`WhisperLive` (any faster-whisper model: LocalAgreement-2 over a
rolling buffer, :mod:`speech.online`) and the NeMo cache-aware streaming backend
(:mod:`speech.backends.nemo_streaming`), which also implements this protocol directly.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from speech.online import OnlineTranscriber, Recogniser, StreamOptions, StreamUpdate, decode_jobs


class LiveStream(Protocol):
    """The recognition state of one live stream (one caller at a time)."""

    received: int
    """Samples received."""
    finished: bool

    def accept(self, samples: np.ndarray) -> None: ...

    def finish(self) -> None: ...

    @property
    def backlog(self) -> float:
        """Seconds of received audio not decoded yet."""

    @property
    def done(self) -> bool:
        """Finished, and every utterance has had its final."""

    @property
    def pending_final(self) -> bool:
        """A final is waiting (finals are scheduled before partials)."""

    @property
    def awaiting_words(self) -> bool:
        """An utterance has begun and nothing of it was shown yet."""

    def next_job(self) -> Any | None:
        """Work for the model, or None (also while a job of this stream is in flight)."""

    def complete(self, job: Any, result: Any) -> list[StreamUpdate]:
        """Take the result of ``job``; return what changed."""


@runtime_checkable
class LiveRecogniser(Protocol):
    """One model serving any number of live streams."""

    @property
    def identifier(self) -> str: ...

    @property
    def multilingual(self) -> bool: ...

    def open_stream(self, options: StreamOptions) -> LiveStream: ...

    def decode(self, jobs: Sequence[Any], *, hurry: bool = False) -> list[Any]:
        """Run jobs of any streams (each has a ``stream`` attribute); one result per job.
        ``hurry``: the server is falling behind; trade some accuracy for speed if possible."""


class WhisperLive:
    """A faster-whisper model as a live recogniser (:mod:`speech.online`)."""

    def __init__(self, recogniser: Recogniser) -> None:
        self.recogniser = recogniser

    @property
    def identifier(self) -> str:
        return str(getattr(self.recogniser, "identifier", type(self.recogniser).__name__))

    @property
    def multilingual(self) -> bool:
        return self.recogniser.multilingual

    def open_stream(self, options: StreamOptions) -> LiveStream:
        return OnlineTranscriber(options)

    def decode(self, jobs: Sequence[Any], *, hurry: bool = False) -> list[Any]:
        return list(decode_jobs(self.recogniser, jobs, hurry=hurry))


def as_live(recogniser: Any) -> LiveRecogniser:
    """``recogniser`` itself when it streams natively, else the Whisper adapter around it."""
    if isinstance(recogniser, LiveRecogniser):
        return recogniser
    return WhisperLive(recogniser)
