"""What the live engine needs from a recogniser, and the Whisper implementation of it.

A live recogniser opens one :class:`LiveStream` per client. A stream takes audio as it arrives
and hands out *jobs* (work for the model, never run by the stream itself); the recogniser's
:meth:`LiveRecogniser.decode` runs a list of jobs from any number of streams in as few model
calls as it can, and each result goes back to its stream, which turns it into partial and final
:class:`~speech.online.StreamUpdate` s. The engine's scheduler decides whose jobs run when.

The protocols are generic in the job type and the result type, which only the recogniser and
its streams know: a scheduler passes them along unopened. Two implementations:
:class:`WhisperLive` (any faster-whisper model: LocalAgreement-2 over a rolling buffer,
:mod:`speech.online`; its jobs are :class:`~speech.online.DecodeJob` windows) and the NeMo
cache-aware streaming backend (:mod:`speech.backends.nemo_streaming`; its jobs are encoder
chunks), which implements :class:`LiveRecogniser` directly.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, TypeVar, overload, runtime_checkable

import numpy as np

from speech.online import (
    DecodeJob,
    OnlineTranscriber,
    Recogniser,
    StreamOptions,
    StreamUpdate,
    WindowResult,
    decode_jobs,
)


class StreamState(Protocol):
    """A live stream as its client and the scheduler see it (one caller at a time, except
    :meth:`listen`: see there)."""

    received: int
    """Samples received."""
    finished: bool

    def listen(self, samples: np.ndarray) -> None:
        """Run the VAD over the next piece of audio ahead of :meth:`accept`, which then only
        routes it. The VAD is the costly part of taking audio in and touches nothing else, so
        a server runs this outside the lock that serialises the other calls (pieces in order,
        each heard before it is accepted)."""

    def accept(self, samples: np.ndarray) -> None:
        """Add 16 kHz mono float32 samples (the VAD runs here unless :meth:`listen` ran)."""

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


class LiveJob(Protocol):
    """Work a stream hands out for the model: one window of an utterance (Whisper) or one
    encoder chunk of it (NeMo)."""

    @property
    def stream(self) -> StreamState:
        """The stream that handed it out, which takes its result."""


JobT = TypeVar("JobT", bound=LiveJob)
ResultT = TypeVar("ResultT")
_ResultT_contra = TypeVar("_ResultT_contra", contravariant=True)


class LiveStream(StreamState, Protocol[JobT, _ResultT_contra]):
    """The recognition state of one live stream, handing out jobs of type ``JobT`` and taking
    their results."""

    def next_job(self) -> JobT | None:
        """Work for the model, or None (also while a job of this stream is in flight)."""

    def complete(self, job: JobT, result: _ResultT_contra) -> list[StreamUpdate]:
        """Take the result of ``job``; return what changed."""


@runtime_checkable
class LiveRecogniser(Protocol[JobT, ResultT]):
    """One model serving any number of live streams."""

    @property
    def identifier(self) -> str: ...

    @property
    def multilingual(self) -> bool: ...

    def open_stream(self, options: StreamOptions) -> LiveStream[JobT, ResultT]: ...

    def decode(self, jobs: Sequence[JobT], *, hurry: bool = False) -> list[ResultT]:
        """Run jobs of any of its streams; one result per job, in order. ``hurry``: the
        server is falling behind; trade some accuracy for speed if possible."""


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

    def open_stream(self, options: StreamOptions) -> OnlineTranscriber:
        return OnlineTranscriber(options)

    def decode(self, jobs: Sequence[DecodeJob], *, hurry: bool = False) -> list[WindowResult]:
        return decode_jobs(self.recogniser, jobs, hurry=hurry)


@overload
def as_live(recogniser: LiveRecogniser[JobT, ResultT]) -> LiveRecogniser[JobT, ResultT]: ...


@overload
def as_live(recogniser: Recogniser) -> WhisperLive: ...


def as_live(recogniser: LiveRecogniser[JobT, ResultT] | Recogniser
            ) -> LiveRecogniser[JobT, ResultT] | WhisperLive:
    """``recogniser`` itself when it streams natively, else the Whisper adapter around it."""
    if isinstance(recogniser, LiveRecogniser):
        return recogniser
    return WhisperLive(recogniser)
