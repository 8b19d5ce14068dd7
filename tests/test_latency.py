"""Streaming latency on the audio clock: hand-derived figures and SimulEval's LAAL formula.

Every expected number is derived in the comment above its assertion. Word delays are counted
from the utterance's speech onset; the source length is the utterance's duration.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pytest

from eval.latency import (
    LAAL,
    Emission,
    FinalLag,
    FirstPartialLatency,
    UtteranceTimeline,
    average_lagging,
    first_partial_time,
    latency_distribution,
    tokenizer_for,
    word_delays,
    word_stable_times,
)


def _timeline(start: float, end: float, *events: tuple[float, str],
              final: bool = True, reference: str = "") -> UtteranceTimeline:
    """Partials at the given times; the last event is the final unless ``final`` is False."""
    emissions = tuple(Emission(time, text, final=final and i == len(events) - 1)
                      for i, (time, text) in enumerate(events))
    return UtteranceTimeline(start, end, emissions, reference)


def _simuleval_laal(delays: Sequence[float], src_len: float, ref_len: int) -> float:
    """The loop of SimulEval's own LAAL test, transcribed: facebookresearch/SimulEval,
    simuleval/test/test_latency_metrics.py, ``test_robust_al``."""
    metrics_from_equation = 0.0
    tgt_len = max(ref_len, len(delays))
    gamma = tgt_len / src_len
    tau = 0
    for t_miuns_1, d in enumerate(delays):
        if d <= src_len:
            metrics_from_equation += d - t_miuns_1 / gamma
            tau = t_miuns_1 + 1
            if d == src_len:
                break
    return metrics_from_equation / tau


# The utterance spoken from 1.0 s to 3.0 s (source length 2.0 s); "patient" is misheard as
# "patience" at 2.5 s and only settles with the final at 3.5 s.
THREE_WORDS = _timeline(1.0, 3.0, (1.5, "The"), (2.0, "the patient"), (2.5, "the patience is"),
                        (3.5, "The patient is."), reference="the patient is")


def test_three_word_utterance_by_hand() -> None:
    # First partial: "The" at 1.5 s, onset 1.0 s → 0.5 s. Final lag: 3.5 − 3.0 = 0.5 s.
    assert FirstPartialLatency().sentence_scores([THREE_WORDS]) == [pytest.approx(0.5)]
    assert FinalLag().sentence_scores([THREE_WORDS]) == [pytest.approx(0.5)]
    # "the" holds from 1.5 s on; "patient" is replaced at 2.5 s, so it is stable only from the
    # final at 3.5 s; "is" appears at 2.5 s but behind a wrong prefix, so also 3.5 s.
    assert word_stable_times(THREE_WORDS) == (1.5, 3.5, 3.5)
    assert word_delays(THREE_WORDS) == pytest.approx((0.5, 2.5, 2.5))
    # LAAL: |X| = 2.0 s, |Y| = max(3 hyp, 3 ref) = 3, so word i is due at i · 2/3 s.
    # i=0: 0.5 − 0 = 0.5 (0.5 < 2.0, go on); i=1: 2.5 − 2/3 = 11/6, and 2.5 >= 2.0 so tau = 2.
    # LAAL = (1/2 + 11/6) / 2 = 7/6 s. The third word is beyond tau and does not count.
    score = LAAL().corpus_score([THREE_WORDS])
    assert score.score == pytest.approx(7 / 6)
    assert score.details["n"] == 1


def test_no_delay_reaches_the_source_length() -> None:
    # Speech 10–14 s (|X| = 4 s); the final comes at 13 s, before the annotated offset.
    timeline = _timeline(10.0, 14.0, (11.0, "take"), (12.0, "take these"),
                         (13.0, "take these tablets"), reference="take these tablets")
    # Final lag 13 − 14 = −1 s: the system finalised early.
    assert FinalLag().sentence_scores([timeline]) == [pytest.approx(-1.0)]
    # Delays 1, 2, 3 s, none >= 4 s, so tau = 3 (every word). Rate 4/3 s per word:
    # (1 − 0) + (2 − 4/3) + (3 − 8/3) = 1 + 2/3 + 1/3 = 2; LAAL = 2 / 3.
    assert word_delays(timeline) == pytest.approx((1.0, 2.0, 3.0))
    assert LAAL().corpus_score([timeline]).score == pytest.approx(2 / 3)


def test_over_generation_uses_the_longer_length() -> None:
    # Speech 0–2 s; the hypothesis repeats "is" (5 words) against a 4-word reference.
    timeline = _timeline(0.0, 2.0, (0.5, "the patient"), (1.0, "the patient is is"),
                         (2.5, "the patient is is fine"), reference="the patient is fine")
    assert word_delays(timeline) == pytest.approx((0.5, 0.5, 1.0, 1.0, 2.5))
    # LAAL: |Y| = max(5, 4) = 5, rate 2/5 = 0.4 s per word:
    # 0.5 + (0.5 − 0.4) + (1.0 − 0.8) + (1.0 − 1.2) + (2.5 − 1.6) = 0.5 + 0.1 + 0.2 − 0.2 + 0.9
    # = 1.5 over tau = 5 (2.5 >= 2 at the last word) → 0.3 s.
    assert LAAL().corpus_score([timeline]).score == pytest.approx(0.3)
    # Classic AL uses the reference's 4 words, rate 0.5 s: 0.5 + 0 + 0 − 0.5 + 0.5 = 0.5 → 0.1 s,
    # lower than LAAL: AL rewards the extra word, LAAL does not.
    al = LAAL(length_adaptive=False)
    assert al.name == "AL"
    assert al.corpus_score([timeline]).score == pytest.approx(0.1)
    assert "len:ref" in al.signature() and "len:max(hyp,ref)" in LAAL().signature()


# SimulEval's worked example (simuleval/test/test_latency_metrics.py): 8 target tokens with
# these delays, a source of length 9 and a 5-token reference; the short hypothesis has 3.
SIMULEVAL_DELAYS = [1.0, 1.0, 2.0, 3.0, 5.0, 7.0, 7.0, 9.0]
SIMULEVAL_SHORT = [5.0, 7.0, 9.0]


def test_simuleval_worked_example() -> None:
    # Long hypothesis: |Y| = max(5, 8) = 8, rate 9/8 = 1.125 per token:
    # 1, 1 − 1.125, 2 − 2.25, 3 − 3.375, 5 − 4.5, 7 − 5.625, 7 − 6.75, 9 − 7.875
    # = 1 − 0.125 − 0.25 − 0.375 + 0.5 + 1.375 + 0.25 + 1.125 = 3.5; tau = 8 (9 >= 9) → 0.4375.
    assert average_lagging(SIMULEVAL_DELAYS, 9, 5) == pytest.approx(0.4375)
    # Short hypothesis: |Y| = max(5, 3) = 5, rate 9/5 = 1.8: 5 + 5.2 + 5.4 = 15.6 → 15.6 / 3 = 5.2.
    assert average_lagging(SIMULEVAL_SHORT, 9, 5) == pytest.approx(5.2)
    # Classic AL on the long one uses |Y| = 5 (rate 1.8): 1 − 0.8 − 1.6 − 2.4 − 2.2 − 2 − 3.8
    # − 3.6 = −15.4 → −1.925: over-generation drives AL below zero.
    assert average_lagging(SIMULEVAL_DELAYS, 9, 5, length_adaptive=False) == \
        pytest.approx(-1.925)
    for delays in (SIMULEVAL_DELAYS, SIMULEVAL_SHORT):
        assert average_lagging(delays, 9, 5) == pytest.approx(_simuleval_laal(delays, 9, 5))


def test_simuleval_example_as_a_timeline() -> None:
    # The same delays from emissions: words settle at 1, 1, 2, 3, 5, 7, 7, 9 s of a 9 s utterance.
    timeline = _timeline(0.0, 9.0, (1.0, "pain in"), (2.0, "pain in the"),
                         (3.0, "pain in the left"), (5.0, "pain in the left side"),
                         (7.0, "pain in the left side of my"),
                         (9.0, "pain in the left side of my chest"),
                         reference="my left side hurts badly")
    assert list(word_delays(timeline)) == SIMULEVAL_DELAYS
    assert LAAL().corpus_score([timeline]).score == pytest.approx(0.4375)


def test_simuleval_edge_cases() -> None:
    # A first delay beyond the source length is returned as is.
    assert average_lagging([5.0, 6.0], 4.0, 2) == 5.0
    # tau is the first delay >= |X|, included: [1, 5, 6], |X| = 4, |Y| = 3 (rate 4/3):
    # (1 + 5 − 4/3) / 2 = 7/3; the 6 is beyond tau.
    assert average_lagging([1.0, 5.0, 6.0], 4.0, 3) == pytest.approx(7 / 3)
    # A zero-length source: the limit of the formula, the first delay (tau = 1).
    assert average_lagging([0.5, 0.7], 0.0, 2) == 0.5
    # No reference: AL falls back to the hypothesis length, like LAAL.
    assert average_lagging([1.0, 2.0], 2.0, 0, length_adaptive=False) == \
        average_lagging([1.0, 2.0], 2.0, 0)
    with pytest.raises(ValueError, match="at least one"):
        average_lagging([], 1.0, 1)


def test_revisions_and_normalisation() -> None:
    # "pain" vanishes at 2 s and comes back with the final at 3 s: stable only from 3 s.
    revised = _timeline(0.0, 3.0, (1.0, "chest pain"), (2.0, "chest"), (3.0, "chest pain"))
    assert word_stable_times(revised) == (1.0, 3.0)
    # Extra words in a partial do not unsettle the prefix; case and punctuation are normalised.
    longer = _timeline(0.0, 3.0, (1.0, "Chest pain, now"), (3.0, "chest pain."))
    assert word_stable_times(longer) == (1.0, 1.0)
    # A filler-only partial ("Um." normalises to nothing) is not a first partial.
    filler = _timeline(0.0, 1.0, (0.2, "Um."), (0.6, "chest"), (1.2, "chest"))
    assert first_partial_time(filler) == 0.6


def test_character_languages() -> None:
    assert tokenizer_for("zh")("胸口 痛") == ["胸", "口", "痛"]
    assert "tok:char" in LAAL("zh").signature()
    assert "tok:whitespace" in LAAL("en").signature()


def test_validation_errors() -> None:
    with pytest.raises(ValueError, match="non-decreasing"):
        _timeline(0.0, 2.0, (1.0, "a"), (0.5, "a b"))
    with pytest.raises(ValueError, match="before it starts"):
        _timeline(2.0, 1.0, (2.5, "a"))
    with pytest.raises(ValueError, match="at most one final"):
        UtteranceTimeline(0.0, 1.0, (Emission(1.0, "a", True), Emission(1.0, "a", True)))
    with pytest.raises(ValueError, match="must be the last"):
        UtteranceTimeline(0.0, 1.0, (Emission(1.0, "a", True), Emission(1.2, "a b")))
    with pytest.raises(ValueError, match="emission time"):
        Emission(-0.1, "a")
    with pytest.raises(ValueError, match="utterance start"):
        _timeline(math.nan, 1.0, (1.0, "a"))


def test_missing_final() -> None:
    unfinished = _timeline(0.0, 1.0, (0.5, "chest"), (0.9, "chest pain"), final=False)
    finished = _timeline(0.0, 1.0, (0.5, "chest"), (1.25, "chest pain"))
    corpus = [unfinished, finished]
    with pytest.raises(ValueError, match="no final"):
        word_stable_times(unfinished)
    # Final lag: only the finished one counts, 1.25 − 1.0 = 0.25 s.
    lag = FinalLag().corpus_score(corpus)
    assert lag.score == pytest.approx(0.25)
    assert (lag.details["n"], lag.details["missing_final"]) == (1, 1)
    laal = LAAL().corpus_score(corpus)
    assert (laal.details["n"], laal.details["missing_final"], laal.details["left_out"]) == (1, 1, 1)
    # Both still have a first partial (0.5 s after onset).
    first = FirstPartialLatency().corpus_score(corpus)
    assert (first.score, first.details["n"], first.details["no_partial"]) == (0.5, 2, 0)
    with pytest.raises(ValueError, match="left out"):
        FinalLag().corpus_score([unfinished])
    # A final with no words (a lone filler) has a final lag but no word delays.
    empty = _timeline(0.0, 1.0, (1.5, "Um."))
    laal = LAAL().corpus_score([finished, empty])
    assert (laal.details["n"], laal.details["empty_final"], laal.details["left_out"]) == (1, 1, 1)
    assert FinalLag().sentence_scores([empty]) == [0.5]


def test_corpus_statistics_and_signature() -> None:
    # Final lags 0.1, 0.2, 0.3, 0.4, 1.0: mean 2.0 / 5 = 0.4, median 0.3; percentiles by linear
    # interpolation over ranks 0..4: p90 at rank 3.6 → 0.4 + 0.6 · 0.6 = 0.76,
    # p95 at rank 3.8 → 0.4 + 0.8 · 0.6 = 0.88; max 1.0.
    corpus = [_timeline(0.0, 1.0, (1.0 + lag, "chest")) for lag in (0.1, 0.2, 0.3, 0.4, 1.0)]
    score = FinalLag().corpus_score(corpus)
    assert score.score == pytest.approx(0.4)
    assert score.details["median"] == pytest.approx(0.3)
    assert score.details["p90"] == pytest.approx(0.76)
    assert score.details["p95"] == pytest.approx(0.88)
    assert score.details["max"] == pytest.approx(1.0)
    assert score.details["n"] == 5
    assert score.higher_is_better is False
    assert "unit:s" in score.signature and "stat:mean" in score.signature
    signature = LAAL().signature()
    assert signature.startswith("laal|unit:s|clock:audio")
    assert "norm:whisper-english" in signature


def test_references_given_or_from_the_timeline() -> None:
    # THREE_WORDS carries a 3-word reference (LAAL 7/6). Given a 6-word reference instead,
    # |Y| = 6 and the rate is 2/6 = 1/3 s: (0.5 + (2.5 − 1/3)) / 2 = 4/3.
    longer = ["the patient is not feeling well"]
    assert LAAL().corpus_score([THREE_WORDS], longer).score == pytest.approx(4 / 3)
    with pytest.raises(ValueError, match="references"):
        LAAL().corpus_score([THREE_WORDS], ["a", "b"])


def test_latency_distribution() -> None:
    unfinished = _timeline(0.0, 1.0, (0.5, "chest"), final=False)
    distribution = latency_distribution([THREE_WORDS, unfinished])
    assert distribution["first-partial-latency"] == pytest.approx([0.5, 0.5])
    assert distribution["final-lag"] == pytest.approx([0.5])
    assert distribution["LAAL"] == pytest.approx([7 / 6])
