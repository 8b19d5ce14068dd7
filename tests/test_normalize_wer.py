"""WER/CER after the shared normaliser, on hand-checked cases."""

from __future__ import annotations

import jiwer
import pytest

from eval.normalize import normalizer_for
from eval.wer import error_rate


def test_english_normaliser_folds_spelling_numbers_fillers_and_tags() -> None:
    normalize = normalizer_for("en")
    assert normalize("OK, Mr. Smith: um, the colour <UNSURE> is fine.") == \
        "ok mister smith the color is fine"
    assert normalize("Metformin 500mg twice-daily") == "metformin 500 mg twice daily"


def test_wer_counts_edits_over_reference_words() -> None:
    # ref: "the patient denies chest pain" (5 words); hyp drops "denies" (1 deletion) and says
    # "chess" for "chest" (1 substitution): (1 + 1) / 5 = 0.4.
    result = error_rate(["The patient denies chest pain."], ["the patient chess pain"])
    assert result.score == pytest.approx(0.4)
    assert (result.substitutions, result.deletions, result.insertions) == (1, 1, 0)
    assert "norm:whisper-english" in result.signature


def test_wer_matches_jiwer_on_already_normal_text() -> None:
    refs = ["go forward ten meters", "feels like these days go on forever"]
    hyps = ["go forward ten meter", "feels like the days go on for ever"]
    assert error_rate(refs, hyps, language="en").score == pytest.approx(jiwer.wer(refs, hyps))


def test_vietnamese_keeps_diacritics() -> None:
    # "bà" (grandmother) and "ba" (three/father) are different words: stripping the tone mark
    # would turn this substitution (1 of 4 words = 0.25) into a perfect match.
    result = error_rate(["bà bị đau ngực"], ["ba bị đau ngực"], language="vi")
    assert result.score == pytest.approx(0.25)


def test_chinese_is_scored_by_characters() -> None:
    # 5 reference characters, one substituted: CER 1/5.
    result = error_rate(["砸自己的脚"], ["砸自已的脚"], language="zh")
    assert result.unit == "cer"
    assert result.score == pytest.approx(0.2)


def test_mismatched_lengths_are_refused() -> None:
    with pytest.raises(ValueError, match="2 references but 1 hypotheses"):
        error_rate(["a", "b"], ["a"])
