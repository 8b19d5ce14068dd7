"""Entity F1 on ASR output: SLUE bag of entities and projection through the word alignment."""

from __future__ import annotations

import pytest

from eval.asr_entities import BagOfEntitiesF1, ProjectedEntityF1, TaggedText, project_spans
from ner.iob import Span, spans_from_iob2
from tests.test_entity_f1 import _conll

REFERENCE = TaggedText.from_text("The patient takes Metformin 500 mg daily.",
                                 (Span(3, 4, "MEDICATION"), Span(4, 6, "DOSAGE")))
# The ASR dropped "The" and said "milligrams"; a tagger on its output found both entities.
HYPOTHESIS = TaggedText.from_text("patient takes metformin, 500 milligrams daily",
                                  (Span(2, 3, "MEDICATION"), Span(3, 5, "DOSAGE")))


def test_projection_follows_the_alignment() -> None:
    # Alignment of the folded words: delete "the", match patient/takes/metformin/500,
    # substitute mg→milligrams, match daily. So MEDICATION (ref 3) → hyp 2 and DOSAGE
    # (ref 4-5) → hyp 3-4.
    assert project_spans(REFERENCE.words, HYPOTHESIS.words, REFERENCE.spans) == [
        Span(2, 3, "MEDICATION"), Span(3, 5, "DOSAGE")]
    score = ProjectedEntityF1().corpus_score([HYPOTHESIS], [REFERENCE])
    assert score.score == pytest.approx(100.0)


def test_bag_of_entities_pays_for_the_wording_and_label_f1_does_not() -> None:
    # Bags: ref {(MEDICATION, metformin), (DOSAGE, 500 mg)}, hyp {(MEDICATION, metformin),
    # (DOSAGE, 500 milligrams)}: 1 of 2 pairs shared → P = R = F1 = 50 %. By type alone both
    # bags are {MEDICATION, DOSAGE} → 100 %.
    assert BagOfEntitiesF1("en").corpus_score([HYPOTHESIS], [REFERENCE]).score == \
        pytest.approx(50.0)
    label = BagOfEntitiesF1("en", label_only=True).corpus_score([HYPOTHESIS], [REFERENCE])
    assert label.score == pytest.approx(100.0)
    assert "convention:SLUE" in label.signature


def test_bag_counts_repeated_entities_as_a_multiset() -> None:
    # Reference names aspirin twice, hypothesis once: 1 shared of 2 gold, 1 predicted →
    # P = 1, R = 1/2, F1 = 2/3.
    ref = TaggedText(("aspirin", "and", "aspirin"), (Span(0, 1, "MED"), Span(2, 3, "MED")))
    hyp = TaggedText(("aspirin", "and", "ice"), (Span(0, 1, "MED"),))
    score = BagOfEntitiesF1().corpus_score([hyp], [ref])
    assert score.score == pytest.approx(200 / 3)
    assert (score.details["precision"], score.details["recall"]) == (100.0, 50.0)


def test_an_entity_the_asr_deleted_is_still_owed() -> None:
    # "no chest pain" → "no": the CONDITION span projects to nothing; 0 found of 1 owed.
    ref = TaggedText(("no", "chest", "pain"), (Span(1, 3, "CONDITION"),))
    hyp = TaggedText(("no",), ())
    assert project_spans(ref.words, hyp.words, ref.spans) == [None]
    score = ProjectedEntityF1().corpus_score([hyp], [ref])
    assert (score.score, score.details["support"]) == (0.0, 1)


def test_projection_is_the_identity_on_case_and_punctuation_changes() -> None:
    # On real NCBI-disease sentences: the "hypothesis" is the same words lower-cased with
    # punctuation stripped, and the tagger's spans are the gold ones: F1 must be exactly 100.
    references, hypotheses = [], []
    for line in _conll("ncbi_disease/devel.tsv")[:300]:
        words = tuple(f"w{i}," if i % 3 else f"W{i}" for i in range(len(line)))
        spans = tuple(spans_from_iob2(line))
        references.append(TaggedText(words, spans))
        hypotheses.append(TaggedText(tuple(w.lower().rstrip(",") for w in words), spans))
    assert sum(len(r.spans) for r in references) > 200
    assert ProjectedEntityF1().corpus_score(hypotheses, references).score == 100.0


def test_character_spans_become_word_spans() -> None:
    text = "Pt denies  chest pain; takes aspirin."
    # "chest pain" (11-21) covers words 2-3 (0-based); "aspir" (29-34) lies inside word 5.
    tagged = TaggedText.from_char_spans(text, [(11, 21, "CONDITION"), (29, 34, "MED")])
    assert tagged.words == ("Pt", "denies", "chest", "pain;", "takes", "aspirin.")
    assert tagged.spans == (Span(2, 4, "CONDITION"), Span(5, 6, "MED"))
