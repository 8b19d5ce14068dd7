"""Chunking for batched decoding and the recovery of chunk tails Whisper skipped."""

from __future__ import annotations

from speech.chunking import Span, merge_runs, uncovered_tails


def test_runs_merge_up_to_the_limit_and_long_runs_are_cut() -> None:
    runs = [Span(0.0, 4.0), Span(5.0, 12.0), Span(13.0, 25.0), Span(30.0, 75.0)]
    assert merge_runs(runs, limit=20.0) == [
        Span(0.0, 12.0), Span(13.0, 25.0), Span(30.0, 50.0), Span(50.0, 70.0), Span(70.0, 75.0)]


def test_no_speech_means_no_chunks() -> None:
    assert merge_runs([], limit=20.0) == []


def test_a_tail_with_speech_that_no_segment_reached_is_decoded_again() -> None:
    chunks = [Span(0.0, 20.0), Span(21.0, 40.0)]
    speech = [Span(0.5, 9.0), Span(14.0, 19.5), Span(21.0, 39.0)]
    covered = [Span(0.4, 5.0), Span(5.0, 9.1), Span(21.0, 39.2)]
    # The first chunk's segments stop at 9.1 s but there is speech from 14.0 to 19.5 s: it is
    # retried from 0.2 s before that speech. The second chunk is fully covered.
    assert uncovered_tails(chunks, covered, speech) == [Span(13.8, 20.0)]


def test_silent_tails_short_gaps_and_empty_chunks_are_left_alone() -> None:
    chunks = [Span(0.0, 20.0), Span(21.0, 40.0), Span(41.0, 50.0)]
    speech = [Span(0.0, 12.0), Span(21.0, 39.5), Span(41.0, 50.0)]
    covered = [Span(0.0, 12.0), Span(21.0, 39.3)]
    # Chunk 1: the rest is silence. Chunk 2: the gap (0.7 s) is below min_gap. Chunk 3: no
    # segment at all, which means the model judged it not to be speech.
    assert uncovered_tails(chunks, covered, speech) == []
