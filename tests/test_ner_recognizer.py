"""Recognizers behind one interface: merging without overlaps, precedence, rules per language."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise
from pathlib import Path

from ner.lexicon import LexiconMatcher, builtin_lexicon
from ner.recognizer import (
    EntityRecognizer,
    LexiconRecognizer,
    Recognizer,
    TaggerRecognizer,
    merge_entities,
)
from ner.schema import EntityType
from ner.terms import Term
from ner.types import Entity, EntitySource

CONDITION = EntityType.MEDICAL_CONDITION
MEDICATION = EntityType.MEDICATION


def entity(text: str, part: str, kind: EntityType, score: float, source: EntitySource,
           code: str | None = None) -> Entity:
    start = text.index(part)
    return Entity(start, start + len(part), part, kind, score, source, code)


class FakeRecognizer:
    """Returns the same entities for every text (tests only)."""

    def __init__(self, entities: Sequence[Entity]) -> None:
        self.entities = list(entities)

    def recognize(self, texts: Sequence[str], language: str) -> list[list[Entity]]:
        return [list(self.entities) for _ in texts]


def test_longer_span_wins_over_a_nested_lexicon_entity() -> None:
    text = "severe chest pain"
    model = entity(text, "severe chest pain", CONDITION, 0.6, "model")
    lexicon = entity(text, "chest pain", CONDITION, 1.0, "lexicon", code="C1")
    assert merge_entities([[lexicon], [model]]) == [model]


def test_same_span_prefers_a_coded_lexicon_entity_then_the_higher_score() -> None:
    text = "aspirin"
    model = entity(text, "aspirin", MEDICATION, 0.9, "model")
    coded = entity(text, "aspirin", MEDICATION, 0.5, "lexicon", code="RX-1191")
    uncoded = entity(text, "aspirin", CONDITION, 0.5, "lexicon")
    assert merge_entities([[model], [coded]]) == [coded]
    assert merge_entities([[uncoded], [model]]) == [model]


def test_partial_overlaps_leave_no_overlap_and_stay_sorted() -> None:
    text = "acute renal failure and chest pain"
    groups = [[entity(text, "acute renal", CONDITION, 0.7, "model"),
               entity(text, "chest pain", CONDITION, 0.8, "model")],
              [entity(text, "renal failure", CONDITION, 1.0, "lexicon"),
               entity(text, "pain", CONDITION, 1.0, "lexicon")]]
    merged = merge_entities(groups)
    assert [e.text for e in merged] == ["renal failure", "chest pain"]


def test_entity_recognizer_merges_then_applies_the_rules() -> None:
    text = "no amoxicillin 500 mg; denies chest pain"
    tagger = FakeRecognizer([entity(text, "amoxicillin", MEDICATION, 0.8, "model"),
                             entity(text, "pain", CONDITION, 0.9, "model")])
    recognizers: list[Recognizer] = [tagger, LexiconRecognizer([builtin_lexicon()])]
    [found] = EntityRecognizer(recognizers).recognize([text], "en")
    assert [(e.text, e.source, e.negated) for e in found] == [
        ("amoxicillin", "lexicon", True), ("chest pain", "lexicon", True)]
    assert [a.text for a in found[0].attributes] == ["500 mg"]


def test_lexicons_run_for_their_own_language_and_rules_only_where_they_exist() -> None:
    french = LexiconMatcher([Term("fièvre", CONDITION)], "fr")
    vietnamese = LexiconMatcher([Term("sốt", CONDITION)], "vi")
    recognizer = EntityRecognizer([LexiconRecognizer([builtin_lexicon(), french, vietnamese])])
    assert [e.negated for e in recognizer.recognize_one("pas de fièvre", "fr-CA")] == [True]
    assert recognizer.recognize_one("no fever", "fr") == []
    assert [(e.text, e.negated) for e in recognizer.recognize_one("không sốt", "vi")] == [
        ("sốt", False)]


def test_tagger_adapter_runs_a_real_tagger_only_for_its_languages(tiny_model_dir: Path) -> None:
    from ner.tagger import TransformerTagger

    texts = ["Aspirin 81 mg daily for chest pain", "pas de fièvre"]
    tagger = TaggerRecognizer(TransformerTagger(tiny_model_dir))
    assert tagger.recognize(texts[1:], "fr") == [[]]
    recognizer = EntityRecognizer([tagger, LexiconRecognizer([builtin_lexicon()])])
    [found] = recognizer.recognize(texts[:1], "en")
    assert all(a.end <= b.start for a, b in pairwise(found))
    assert all(texts[0][e.start:e.end] == e.text for e in found)
    spans = {(e.start, e.end, e.type) for e in found}
    for term in builtin_lexicon().find_entities(texts[0]):
        assert (term.start, term.end, term.type) in spans or any(
            e.source == "model" and e.start < term.end and term.start < e.end for e in found)
