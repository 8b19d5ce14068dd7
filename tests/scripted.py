"""A scripted live recogniser: the live policy and engine without a model (fast tests).

:class:`Scripted` hears a script of timed words: a window's decode is the words that lie
wholly inside it (a word cut by the window is not heard). It is a
:class:`speech.live.LiveRecogniser`, so an :class:`streaming.live.engine.Engine` can serve it,
and its streams' VAD is :class:`ScriptedVad` (speech between two given samples, whatever the
audio), so any audio will do.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from speech.audio import SAMPLE_RATE
from speech.online import DecodeJob, OnlineTranscriber, StreamOptions, StreamUpdate, WindowResult
from speech.types import Segment, Word
from speech.vad import VadEvent

PAUSE = 0.2
"""Seconds between two scripted words that the scripted VAD hears as a pause."""


class ScriptedVad:
    """Speech from ``onset`` to ``offset`` (samples), with ``pauses`` (first and last sample)
    inside it: the VAD's events without Silero. A pause is heard where speech resumes; the
    silence that ends speech begins at ``quiet`` (default: the offset)."""

    def __init__(self, onset: int, offset: int,
                 pauses: Sequence[tuple[int, int]] = (), quiet: int | None = None) -> None:
        self.onset, self.offset, self.fed = onset, offset, 0
        self.pauses = pauses
        self.quiet = offset if quiet is None else quiet

    @property
    def position(self) -> int:
        return self.fed

    @property
    def silent_since(self) -> int | None:
        """As :attr:`speech.vad.StreamingVAD.silent_since`."""
        if not self.onset <= self.fed < self.offset:
            return None
        if self.fed >= self.quiet:
            return self.quiet
        return next((a for a, b in self.pauses if a <= self.fed < b), None)

    def feed(self, samples: np.ndarray) -> list[VadEvent]:
        begin, self.fed = self.fed, self.fed + len(samples)
        events = [VadEvent("onset", self.onset), *(VadEvent("pause", a, b)
                                                   for a, b in self.pauses),
                  VadEvent("offset", self.offset, silence=self.quiet)]
        return [e for e in events if begin <= (e.until or e.sample) < self.fed]


class Scripted:
    """Hears ``words`` (times on the stream clock) between ``onset`` and ``offset`` seconds.

    ``partial_slips`` replaces words (by index) in greedy partial decodes of windows that
    end within 1 s after the word, as a short context gets the last words wrong;
    ``unstable`` words (by index) alternate with another spelling from one partial decode to
    the next, as numbers and names do; with ``final_words`` False, final decodes (beam
    search, and partials decoded as finals) hear nothing."""

    identifier = "scripted"
    multilingual = False

    def __init__(self, words: list[Word], onset: float, offset: float,
                 partial_slips: dict[int, str] | None = None,
                 unstable: dict[int, str] | None = None, final_words: bool = True) -> None:
        self.words = words
        self.onset, self.offset = onset, offset
        self.partial_slips = partial_slips or {}
        self.unstable = unstable or {}
        self.final_words = final_words
        self.calls: list[tuple[str, float, float, str | None]] = []
        """(kind, window start, window end in seconds, prompt) of every decode; the kind of a
        partial decoded as a final (``DecodeJob.thorough``) is "thorough"."""
        self.languages: list[tuple[str, str | None]] = []
        """(kind as in ``calls``, language asked for: None to identify it) of every decode."""

    def open_stream(self, options: StreamOptions) -> OnlineTranscriber:
        """A stream whose VAD hears speech from ``onset`` to ``offset`` and a pause wherever
        two words are at least ``PAUSE`` seconds apart."""
        stream = OnlineTranscriber(options)
        pauses = [(round(a.end * SAMPLE_RATE), round(b.start * SAMPLE_RATE))
                  for a, b in itertools.pairwise(self.words) if b.start - a.end >= PAUSE]
        stream.vad = ScriptedVad(round(self.onset * SAMPLE_RATE),  # type: ignore[assignment]
                                 round(self.offset * SAMPLE_RATE), pauses,
                                 round(self.words[-1].end * SAMPLE_RATE) if self.words else None)
        return stream

    def decode(self, jobs: Sequence[DecodeJob], *, hurry: bool = False) -> list[WindowResult]:
        return [job.decided if job.decided is not None else (self._window(job), "en")
                for job in jobs]

    def _window(self, job: DecodeJob) -> list[Segment]:
        final = job.as_final
        begin = (job.utterance.start - job.context) / SAMPLE_RATE
        end = begin + len(job.audio) / SAMPLE_RATE
        kind = "thorough" if job.thorough else job.kind
        self.calls.append((kind, begin, end, job.options.initial_prompt))
        self.languages.append((kind, job.options.language))
        heard = [replace(w, start=w.start - begin, end=w.end - begin,
                         text=self._slip(i, w, end, final))
                 for i, w in enumerate(self.words)
                 if w.start >= begin - 1e-6 and w.end <= end + 1e-6]
        if not heard or (final and not self.final_words):
            return []
        return [Segment(0, heard[0].start, heard[-1].end,
                        "".join(w.text for w in heard).strip(), tuple(heard))]

    def _slip(self, index: int, word: Word, end: float, final: bool) -> str:
        if not final and index in self.partial_slips and end - word.end < 1.0:
            return self.partial_slips[index]
        if not final and index in self.unstable and len(self.calls) % 2:
            return self.unstable[index]
        return word.text


def monologue(sentences: list[str], gap: float = 0.3, word: float = 0.4,
              start: float = 0.5) -> list[Word]:
    """Words of ``sentences`` spoken one after another: ``word`` seconds each, ``gap``
    seconds between sentences."""
    words, clock = [], start
    for sentence in sentences:
        for token in sentence.split():
            words.append(Word(clock, clock + word - 0.05, " " + token, 0.9))
            clock += word
        clock += gap
    return words


def stream_silence(stream: Any, decode: Callable[[Any], Any], seconds: float,
                   delay: float = 0.0) -> list[tuple[float, StreamUpdate]]:
    """Feed a live ``stream`` (Whisper's or NeMo's) ``seconds`` of silent audio in 100 ms
    pieces (its VAD is scripted), then finish it, running each job with ``decode`` as soon as
    the stream asks; each update with the audio received (s) when it came. With ``delay``,
    each decode takes that many seconds of audio, which goes on arriving meanwhile (as on a
    CPU); a job whose result is decided already takes none."""
    pieces = round(seconds * 10)
    updates: list[tuple[float, StreamUpdate]] = []
    running: tuple[Any, float] | None = None
    for step in range(pieces + 1):
        if step < pieces:
            stream.accept(np.zeros(1600, np.float32))
        else:
            stream.finish()
        now = stream.received / SAMPLE_RATE
        while True:
            if running is None and (job := stream.next_job()) is not None:
                running = (job, now + (0 if getattr(job, "decided", None) else delay))
            if running is None or running[1] > now + 1e-9:
                break
            updates += [(now, u) for u in stream.complete(running[0], decode(running[0]))]
            running = None
    if running is not None:
        updates += [(seconds, u) for u in stream.complete(running[0], decode(running[0]))]
    while (job := stream.next_job()) is not None:
        updates += [(seconds, u) for u in stream.complete(job, decode(job))]
    assert stream.done
    return updates
