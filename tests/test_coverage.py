"""Coverage of reference segments by live finals."""

from __future__ import annotations

from eval.coverage import Span, covered_fraction, lost_segments


def test_coverage_counts_the_union_of_overlapping_finals() -> None:
    segment = Span(10.0, 20.0)
    assert covered_fraction(segment, [Span(9, 12), Span(11, 15), Span(18, 25)]) == 0.7
    assert covered_fraction(segment, []) == 0.0
    assert covered_fraction(Span(5, 5), []) == 1.0


def test_lost_segments_are_those_without_finals() -> None:
    reference = [Span(0, 2), Span(3, 6), Span(7, 9)]
    finals = [Span(0.1, 2.2), Span(6.9, 9.5), Span(3.0, 3.5)]
    assert lost_segments(reference, finals) == [1]
    assert lost_segments(reference, finals, min_overlap=0.1) == []


def test_words_decide_when_the_segment_spans_pauses() -> None:
    words = (Span(0, 1), Span(1, 2), Span(8, 9), Span(9, 10))
    segment = Span(0, 10, words)
    finals = [Span(0, 2.1), Span(7.9, 10)]
    assert covered_fraction(Span(0, 10), finals) < 0.5
    assert lost_segments([segment], finals) == []
    assert lost_segments([segment], [Span(0, 2.1)], min_overlap=0.6) == [0]
