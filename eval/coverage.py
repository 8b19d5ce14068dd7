"""Did a stream lose speech? Reference segments against the finals that cover them.

A live transcript may cut utterances differently from a batch transcript of the same audio, so
segments cannot be matched one to one. Instead each reference segment (batch transcription,
or a hand-made annotation) is *covered* by the finals whose time spans overlap it. With word
times, what counts is its words: a word is covered when its middle falls within a final's span
(give or take ``tolerance``), and a segment with fewer than ``min_overlap`` of its words covered
is *lost*: the stream produced no final for that speech. (A long batch segment may span pauses
the live VAD cut out, so its time span alone would understate coverage.) Without word times,
the fraction of the segment's time span covered is used. Used by the live load test
(``benchmarks/load_test.py``) and the tests.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Span:
    start: float
    end: float
    words: tuple[Span, ...] = ()


def covered_fraction(segment: Span, finals: Sequence[Span]) -> float:
    """Fraction of ``segment``'s duration inside the union of ``finals``' spans."""
    length = segment.end - segment.start
    if length <= 0:
        return 1.0
    covered, reach = 0.0, segment.start
    for final in sorted(finals, key=lambda s: s.start):
        begin, end = max(final.start, reach), min(final.end, segment.end)
        if end > begin:
            covered += end - begin
            reach = end
    return covered / length


def covered_words(segment: Span, finals: Sequence[Span], tolerance: float = 0.3) -> float:
    """Fraction of ``segment``'s words whose middle lies inside a final (± ``tolerance``)."""
    if not segment.words:
        return covered_fraction(segment, finals)
    inside = sum(any(f.start - tolerance <= (w.start + w.end) / 2 <= f.end + tolerance
                     for f in finals) for w in segment.words)
    return inside / len(segment.words)


def lost_segments(reference: Sequence[Span], finals: Sequence[Span],
                  min_overlap: float = 0.5, tolerance: float = 0.3) -> list[int]:
    """Indices of reference segments the finals cover less than ``min_overlap``."""
    return [i for i, segment in enumerate(reference)
            if covered_words(segment, finals, tolerance) < min_overlap]
