"""WER/CER after the shared normaliser, on hand-checked cases."""

from __future__ import annotations

import jiwer
import pytest

from eval.normalize import normalizer_for
from eval.wer import Alignment, ErrorRate, error_rate


def test_english_normaliser_folds_spelling_numbers_fillers_and_tags() -> None:
    normalize = normalizer_for("en")
    assert normalize("OK, Mr. Smith: um, the colour <UNSURE> is fine.") == \
        "ok mister smith the color is fine"
    assert normalize("Metformin 500mg twice-daily") == "metformin 500 mg twice daily"


def test_a_trailing_ellipsis_is_not_a_word() -> None:
    # Whisper's English normaliser alone turns "and, um..." into "and ." (its last full stop
    # has nothing after it to be stripped before): scored one by one, a hypothesis that trails
    # off would count an inserted word.
    assert normalizer_for("en")("Okay. And, um...") == "okay and"
    assert normalizer_for("en")("It was 2.5 mg... you...") == "it was 2.5 mg you"
    assert error_rate(["maybe like eight", "and"], ["maybe like...", "and, um..."]).details[
        "insertions"] == 0
    assert ErrorRate("en").charged(["so maybe like...", "eight hours."],
                                   "so maybe like eight hours") == [
        Alignment(3, 0, 0, 0), Alignment(2, 0, 0, 0)]


def test_wer_counts_edits_over_reference_words() -> None:
    # ref: "the patient denies chest pain" (5 words); hyp drops "denies" (1 deletion) and says
    # "chess" for "chest" (1 substitution): (1 + 1) / 5 = 40 %.
    result = error_rate(["The patient denies chest pain."], ["the patient chess pain"])
    assert result.score == pytest.approx(40.0)
    d = result.details
    assert (d["substitutions"], d["deletions"], d["insertions"]) == (1, 1, 0)
    assert "norm:whisper-english" in result.signature


def test_wer_matches_jiwer_on_already_normal_text() -> None:
    refs = ["go forward ten meters", "feels like these days go on forever"]
    hyps = ["go forward ten meter", "feels like the days go on for ever"]
    assert error_rate(refs, hyps, language="en").score == pytest.approx(100 * jiwer.wer(refs, hyps))


def test_vietnamese_keeps_diacritics() -> None:
    # "bà" (grandmother) and "ba" (three/father) are different words: stripping the tone mark
    # would turn this substitution (1 of 4 words = 25 %) into a perfect match.
    result = error_rate(["bà bị đau ngực"], ["ba bị đau ngực"], language="vi")
    assert result.score == pytest.approx(25.0)


def test_chinese_is_scored_by_characters() -> None:
    # 5 reference characters, one substituted: CER 1/5 = 20 %.
    result = error_rate(["砸自己的脚"], ["砸自已的脚"], language="zh")
    assert result.metric == "CER"
    assert result.score == pytest.approx(20.0)


def test_mismatched_lengths_are_refused() -> None:
    with pytest.raises(ValueError, match="1 hypotheses but 2 references"):
        error_rate(["a", "b"], ["a"])


def test_mer_is_bounded_by_matches_plus_errors() -> None:
    # ref "a b c d", hyp "a x c d e": 3 hits, 1 substitution (b→x), 1 insertion (e).
    # WER = (1 + 1) / 4 = 50 %; MER = (1 + 1) / (3 + 1 + 0 + 1) = 40 %.
    refs, hyps = ["a b c d"], ["a x c d e"]
    assert error_rate(refs, hyps, unit="wer").score == pytest.approx(50.0)
    mer = error_rate(refs, hyps, unit="mer")
    assert mer.score == pytest.approx(40.0)
    assert mer.score == pytest.approx(100 * jiwer.mer(refs, hyps))
    assert mer.signature.startswith("mer|") and not mer.higher_is_better


def test_sentence_scores_skip_empty_references() -> None:
    metric = ErrorRate("en")
    # "<UNIN/>" is only a transcriber tag: the reference is empty after normalisation.
    scores = metric.sentence_scores(["a b", "x", "anything"], ["a c", "x", "<UNIN/>"])
    assert scores == [pytest.approx(50.0), pytest.approx(0.0), None]
    corpus = metric.corpus_score(["a b", "x", "anything"], ["a c", "x", "<UNIN/>"])
    assert corpus.score == pytest.approx(100 / 3)  # 1 error in 3 reference words
    assert corpus.details["skipped_empty"] == 1


def test_edits_are_charged_to_the_pieces_that_hold_them() -> None:
    """A recording's finals against its whole reference: each piece answers for its own
    words, a deleted run for the piece before the gap, and the totals are the corpus's."""
    reference = "Do you have chest pain? No. Any fever or chills? Only at night."
    pieces = ["Do you have test pain?", "No, no.", "Any fever?", "Only at night."]
    metric = ErrorRate("en")
    charged = metric.charged(pieces, reference)
    assert [(a.hits, a.substitutions, a.deletions, a.insertions) for a in charged] == [
        (4, 1, 0, 0), (1, 0, 0, 1), (2, 0, 2, 0), (3, 0, 0, 0)]
    whole = metric.align([" ".join(pieces)], [reference])
    assert sum(a.errors for a in charged) == whole.errors
    assert sum(a.hits for a in charged) == whole.hits
    # A gap at the very start is the first piece's; no pieces, nothing charged.
    assert metric.charged(["chest pain"], "do you have chest pain")[0].deletions == 3
    assert metric.charged([], reference) == []
    with pytest.raises(ValueError, match="word units"):
        ErrorRate("en", "cer").charged(pieces, reference)
