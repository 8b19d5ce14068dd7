"""The rule engine: medication attributes linked to their medication, and NegEx negation."""

from __future__ import annotations

from pathlib import Path

import pytest

from ner.lexicon import LexiconMatcher, builtin_lexicon
from ner.rules import apply_rules, available_languages, fold_text, load_rules, read_rules
from ner.schema import AttributeType, EntityType
from ner.terms import Term
from ner.types import Entity
from speech.errors import InvalidOptionError
from tests.datafile_errors import assert_refused

CONDITION = EntityType.MEDICAL_CONDITION
MEDICATION = EntityType.MEDICATION

LEXICONS = {
    "en": builtin_lexicon("en"),
    "de": LexiconMatcher([Term("Ibuprofen", MEDICATION), Term("Fieber", CONDITION),
                          Term("Husten", CONDITION), Term("Pneumonie", CONDITION)], "de"),
    "fr": LexiconMatcher([Term("amoxicilline", MEDICATION), Term("fièvre", CONDITION),
                          Term("toux", CONDITION), Term("pneumonie", CONDITION)], "fr"),
    "es": LexiconMatcher([Term("amoxicilina", MEDICATION), Term("fiebre", CONDITION),
                          Term("tos", CONDITION), Term("neumonía", CONDITION)], "es"),
}


def annotate(text: str, language: str = "en") -> list[Entity]:
    return apply_rules(text, LEXICONS[language].find_entities(text), load_rules(language))


def attributes_of(entity: Entity) -> list[tuple[str, str]]:
    return [(attribute.type.value, attribute.text) for attribute in entity.attributes]


def negations(text: str, language: str = "en") -> dict[str, bool]:
    return {entity.text: entity.negated for entity in annotate(text, language)}


def test_rule_files_ship_for_the_four_languages() -> None:
    assert set(available_languages()) >= {"en", "de", "fr", "es"}
    assert load_rules("de-AT").language == "de"
    with pytest.raises(InvalidOptionError, match="available: de, en, es, fr"):
        load_rules("vi")


def test_amoxicillin_gets_strength_frequency_and_route_with_offsets() -> None:
    text = "amoxicillin 500 mg three times daily by mouth"
    entities = annotate(text)
    assert len(entities) == 1
    medication = entities[0]
    assert (medication.type, medication.start, medication.end) == (MEDICATION, 0, 11)
    assert [(a.type, a.start, a.end, a.text) for a in medication.attributes] == [
        (AttributeType.STRENGTH, 12, 18, "500 mg"),
        (AttributeType.FREQUENCY, 19, 36, "three times daily"),
        (AttributeType.ROUTE, 37, 45, "by mouth"),
    ]


@pytest.mark.parametrize(("text", "expected"), [
    ("Take two tablets of paracetamol every 8 hours for 5 days.",
     [("DOSAGE", "two tablets"), ("FREQUENCY", "every 8 hours"), ("DURATION", "for 5 days")]),
    ("salbutamol inhaler 1 puff twice a day", [("FORM", "inhaler"), ("DOSAGE", "1 puff"),
                                               ("FREQUENCY", "twice a day")]),
    ("morphine 5 mg/ml IV", [("STRENGTH", "5 mg/ml"), ("ROUTE", "IV")]),
    ("ibuprofen 400 mg p.o. bid", [("STRENGTH", "400 mg"), ("ROUTE", "p.o."),
                                   ("FREQUENCY", "bid")]),
    ("Metformin 500 mg orally", [("STRENGTH", "500 mg"), ("ROUTE", "orally")]),
])
def test_english_attributes(text: str, expected: list[tuple[str, str]]) -> None:
    medications = [e for e in annotate(text) if e.type is MEDICATION]
    assert len(medications) == 1
    assert attributes_of(medications[0]) == expected


def test_each_attribute_goes_to_the_nearest_medication() -> None:
    entities = annotate("ibuprofen 200 mg and paracetamol 500 mg")
    assert [attributes_of(e) for e in entities] == [[("STRENGTH", "200 mg")],
                                                    [("STRENGTH", "500 mg")]]


def test_attributes_do_not_cross_a_sentence_end() -> None:
    entities = annotate("She takes aspirin. 500 mg twice daily were too much.")
    assert [attributes_of(e) for e in entities] == [[]]


def test_attributes_without_a_medication_are_dropped() -> None:
    assert [attributes_of(e) for e in annotate("fever for 3 days")] == [[]]


@pytest.mark.parametrize(("text", "expected"), [
    ("no fever", {"fever": True}),
    ("Patient denies chest pain.", {"chest pain": True}),
    ("patient has fever but no cough", {"fever": False, "cough": True}),
    ("denies fever, nausea or cough", {"fever": True, "nausea": True, "cough": True}),
    ("No fever. Cough since Monday.", {"fever": True, "Cough": False}),
    ("pneumonia was ruled out", {"pneumonia": True}),
    ("pneumonia was not ruled out", {"pneumonia": False}),
    ("without any sign of a very long lasting headache", {"headache": False}),
])
def test_english_negation(text: str, expected: dict[str, bool]) -> None:
    assert negations(text) == expected


def test_german_negation_and_attributes() -> None:
    assert negations("Der Patient hat kein Fieber, aber Husten.", "de") == {
        "Fieber": True, "Husten": False}
    assert negations("Eine Pneumonie wurde ausgeschlossen.", "de") == {"Pneumonie": True}
    [ibuprofen] = annotate("Ibuprofen 400 mg dreimal täglich oral für 7 Tage", "de")
    assert attributes_of(ibuprofen) == [("STRENGTH", "400 mg"), ("FREQUENCY", "dreimal täglich"),
                                        ("ROUTE", "oral"), ("DURATION", "für 7 Tage")]
    [scheme] = annotate("Ibuprofen 1-0-1 intravenös", "de")
    assert attributes_of(scheme) == [("FREQUENCY", "1-0-1"), ("ROUTE", "intravenös")]


def test_french_negation_and_attributes() -> None:
    assert negations("Pas de fièvre mais une toux.", "fr") == {"fièvre": True, "toux": False}
    assert negations("Patiente sans toux ; fièvre depuis hier.", "fr") == {
        "toux": True, "fièvre": False}
    [drug] = annotate("amoxicilline 500 mg trois fois par jour par voie orale pendant 7 jours",
                      "fr")
    assert attributes_of(drug) == [("STRENGTH", "500 mg"), ("FREQUENCY", "trois fois par jour"),
                                   ("ROUTE", "par voie orale"), ("DURATION", "pendant 7 jours")]


def test_spanish_negation_and_attributes() -> None:
    assert negations("Niega fiebre pero tiene tos.", "es") == {"fiebre": True, "tos": False}
    assert negations("Sin tos, no obstante fiebre alta.", "es") == {"tos": True,
                                                                   "fiebre": False}
    [drug] = annotate("amoxicilina 500 mg tres veces al día por vía oral durante 7 días", "es")
    assert attributes_of(drug) == [("STRENGTH", "500 mg"), ("FREQUENCY", "tres veces al día"),
                                   ("ROUTE", "por vía oral"), ("DURATION", "durante 7 días")]
    [unaccented] = annotate("amoxicilina tres veces al dia por via oral", "es")
    assert attributes_of(unaccented) == [("FREQUENCY", "tres veces al dia"),
                                         ("ROUTE", "por via oral")]


def test_folding_keeps_offsets() -> None:
    text = "Fièvre, día, Straße, ﬁ"
    assert len(fold_text(text)) == len(text)
    assert fold_text(text).startswith("Fievre, dia, Straße")


@pytest.mark.parametrize(("body", "line", "message"), [
    ("language: xx\nattributes:\n  STRENGTH:\n    - '(unclosed'\n", 4,
     "invalid regular expression"),
    ("language: xx\nattributes:\n  POTENCY: ['x']\n", 3, "unknown attribute type 'POTENCY'"),
    ("language: xx\nattributes:\n  ROUTE: ['{missing}']\n", 3, "{missing} is not defined"),
    ("language: xx\nnegation:\n  pre: [no, 5]\n", 3, "not a string"),
    ("language: xx\nnegation:\n  scope_words: many\n", 3, "whole number"),
    ("language: xx\nnegations: {}\n", 2, "unknown key 'negations'"),
    ("language: xx\nattributes: [\n", 3, "not valid YAML"),
])
def test_malformed_pattern_file_names_file_and_line(tmp_path: Path, body: str, line: int,
                                                    message: str) -> None:
    assert_refused(read_rules, tmp_path / "xx.yaml", body, line, message)


def test_no_stays_a_word_in_pattern_files(tmp_path: Path) -> None:
    path = tmp_path / "xx.yaml"
    path.write_text("language: xx\nnegation:\n  pre: [no, off]\n", encoding="utf-8")
    rules = read_rules(path)
    assert rules.negation.pre is not None and rules.negation.pre.search("no fever")
