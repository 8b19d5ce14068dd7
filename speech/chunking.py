"""Where batched decoding looks: VAD speech runs merged into chunks, and the tails it missed.

Whisper often emits end-of-text before a window is done. Sequential decoding then seeks to the
last timestamp and decodes again; the batched pipeline does not, so the rest of the chunk is
lost. On the OSCE interviews (tiny.en) that deleted 11% of the words with 30 s chunks and still
3-4% with 20 s chunks. :func:`uncovered_tails` finds those stretches so that they are decoded in
a second batched pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Span:
    """A stretch of the recording, in seconds."""

    start: float
    end: float

    @property
    def duration(self) -> float:
        return self.end - self.start

    def as_clip(self) -> dict[str, float]:
        """The form faster-whisper's ``clip_timestamps`` takes."""
        return {"start": self.start, "end": self.end}


def merge_runs(runs: Sequence[Span], limit: float) -> list[Span]:
    """Merge consecutive speech runs while the merged span stays within ``limit`` seconds.

    A run longer than ``limit`` is cut into pieces of at most ``limit``.
    """
    chunks: list[Span] = []
    for run in runs:
        start = run.start
        while run.end - start > limit:
            chunks.append(Span(start, start + limit))
            start += limit
        piece = Span(start, run.end)
        if chunks and piece.end - chunks[-1].start <= limit:
            chunks[-1] = Span(chunks[-1].start, piece.end)
        else:
            chunks.append(piece)
    return chunks


def uncovered_tails(chunks: Sequence[Span], covered: Sequence[Span], speech: Sequence[Span],
                    min_gap: float = 1.0, min_speech: float = 0.4) -> list[Span]:
    """The end of each chunk that the decoded segments do not reach but that holds speech.

    ``covered`` are the decoded segments' spans. A chunk with no segment at all is not retried
    (the model judged it non-speech). A tail must be at least ``min_gap`` seconds long and hold
    at least ``min_speech`` seconds of VAD speech; it starts where that speech starts.
    """
    tails = []
    for chunk in chunks:
        ends = [c.end for c in covered if chunk.start - 0.05 <= c.start < chunk.end]
        if not ends:
            continue
        reached = max(ends)
        if chunk.end - reached < min_gap:
            continue
        inside = [Span(max(s.start, reached), min(s.end, chunk.end)) for s in speech
                  if s.end > reached and s.start < chunk.end]
        if sum(s.duration for s in inside) >= min_speech:
            tails.append(Span(max(reached, inside[0].start - 0.2), chunk.end))
    return tails
