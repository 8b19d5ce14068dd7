"""Glossaries, constraint gathering and term checking, without a model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ner.schema import AttributeType, EntityType
from ner.types import Attribute, Entity
from speech.errors import DataFileError
from tests.conftest import TICO_TERMS, WMT23
from tests.datafile_errors import assert_refused
from translate.constraints import TermChecker, consistent, glossary_constraints, pair_constraints
from translate.glossary import Glossary, read_glossary
from translate.numbers import convert_decimal, number_constraints
from translate.tokenization import align_pieces
from translate.translator import entity_constraints
from translate.types import GlossaryEntry, TermConstraint


def test_csv_glossary_with_codes_and_do_not_translate(tmp_path: Path) -> None:
    path = tmp_path / "clinic.csv"
    path.write_text('source,target,src_lang,tgt_lang,code,dnt\n'
                    '"fever, high",hohes Fieber,en,de,R50.9,\n'
                    'Augmentin,,en,de,,yes\n'
                    'fever,fièvre,en,fr,R50.9,0\n', encoding="utf-8")
    assert read_glossary(path, "en", "de") == [
        GlossaryEntry("fever, high", "hohes Fieber", "en", "de", code="R50.9"),
        GlossaryEntry("Augmentin", "Augmentin", "en", "de", do_not_translate=True)]
    assert [e.target for e in read_glossary(path)] == ["hohes Fieber", "Augmentin", "fièvre"]


@pytest.mark.parametrize(("row", "message"), [
    ("fever,Fieber,en,de,,maybe", "do-not-translate value 'maybe'"),
    ("Augmentin,Amoxiclav,en,de,,1", "has another target 'Amoxiclav'"),
    (",Fieber,en,de,,", "empty source term"),
    ("fever,Fieber,en", "3 field"),
])
def test_malformed_glossary_rows_name_file_and_line(tmp_path: Path, row: str,
                                                    message: str) -> None:
    assert_refused(read_glossary, tmp_path / "bad.csv",
                   f"source,target,src_lang,tgt_lang,code,dnt\n{row}\n", 2, message)


def test_missing_glossary_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DataFileError, match="cannot read the glossary"):
        read_glossary(tmp_path / "absent.tsv")


def test_glossary_matching_is_case_and_inflection_tolerant_on_the_real_list() -> None:
    if not TICO_TERMS.is_file():
        pytest.skip(f"{TICO_TERMS} is absent")
    glossary = Glossary(read_glossary(TICO_TERMS, "en", "de"), "en", "de")
    text = "Acute Bronchitis and fevers; coronaviruses spread via droplets."
    found = [(text[c.start:c.end], c.target) for c in glossary_constraints(text, glossary)
             if c.start is not None and c.end is not None]
    assert ("Acute Bronchitis", "akute Bronchitis") in found
    assert ("fevers", "Fieber") in found
    assert ("droplets", "Tröpfchen") in found


def test_first_glossary_wins_and_other_directions_are_ignored() -> None:
    entries = [GlossaryEntry("fever", "Fieber", "en", "de"),
               GlossaryEntry("Fever", "Pyrexie", "en", "de"),
               GlossaryEntry("fever", "fièvre", "en", "fr"),
               GlossaryEntry("Tylenol", "Tylenol", do_not_translate=True)]
    glossary = Glossary(entries, "en", "de")
    assert [h.entry.target for h in glossary.find("fever after Tylenol")] == ["Fieber",
                                                                              "Tylenol"]


def test_numbers_keep_digits_and_units_and_switch_the_decimal_separator() -> None:
    found = number_constraints("Nehmen Sie 2,5 mg, 1,000 Stück, 38,5 °C und 500mg.", "de", "en")
    assert [(c.source, c.target) for c in found] == [
        ("2,5 mg", "2.5 mg"), ("1,000", "1,000"), ("38,5 °C", "38.5 °C"), ("500mg", "500mg")]
    assert convert_decimal("2.5", "en", "fr") == "2,5"
    assert convert_decimal("2.5", "en", "zh") == "2.5"


def test_entities_pass_names_through_and_copy_doses() -> None:
    text = "Frau Müller nimmt Amoxicillin 500 mg dreimal täglich seit 3 Tagen."
    entities = [
        Entity(0, 11, "Frau Müller", EntityType.PROTECTED_HEALTH_INFORMATION, 0.9, "model"),
        Entity(18, 29, "Amoxicillin", EntityType.MEDICATION, 0.9, "model", attributes=(
            Attribute(AttributeType.STRENGTH, 30, 36, "500 mg"),
            Attribute(AttributeType.FREQUENCY, 37, 52, "dreimal täglich")))]
    found = entity_constraints(text, entities, "de", "en")
    assert [(c.source, c.target, c.do_not_translate) for c in found] == [
        ("Frau Müller", "Frau Müller", True), ("500 mg", "500 mg", False)]


def test_consistent_constraints_drop_implied_and_overlapping_terms() -> None:
    big = TermConstraint("komplexen Handverletzungen", "complex hand injuries", 0, 26)
    inside = TermConstraint("Handverletzungen", "hand injuries", 10, 26)
    overlapping = TermConstraint("Handverletzungen", "injuries of the hand", 10, 26)
    other = TermConstraint("Versorgung", "treatment", 30, 40)
    unplaced = TermConstraint("Ergebnis", "outcome")
    assert consistent([inside, unplaced, other, overlapping, big]) == [big, other, unplaced]


def test_pair_constraints_locate_the_source_terms_of_wmt23() -> None:
    if not WMT23.is_file():
        pytest.skip(f"{WMT23} is absent")
    segment = json.loads(WMT23.read_text(encoding="utf-8").splitlines()[0])
    pairs = [(t["de"], t["en"]) for t in segment["terms_proper"]]
    found = pair_constraints(segment["src"], pairs, "de")
    assert [c.target for c in found] == [en for _, en in pairs]
    for constraint in found:
        assert constraint.start is not None and constraint.end is not None
        assert segment["src"][constraint.start:constraint.end] == constraint.source


def test_term_checker_whole_words_case_and_inflection() -> None:
    checker = TermChecker("en")
    assert checker.satisfied("Treatment of hand injuries.", "treatment")
    assert not checker.satisfied("Pretreatment helps.", "treatment")
    assert not checker.satisfied("the treatments", "treatment")
    assert checker.lenient("the treatments", "treatment")
    assert TermChecker("zh").satisfied("患者发烧了", "发烧")


def test_sentencepiece_pieces_align_to_characters() -> None:
    text = "Die Versorgung von Handverletzungen – 2,5 mg."
    tokens = ["▁Die", "▁Vers", "orgung", "▁von", "▁Hand", "verletzungen", "▁", "–", "▁2,5",
              "▁mg", ".", "</s>"]
    spans = align_pieces(text, tokens, {"</s>"})
    pieces = [text[s[0]:s[1]] if s else None for s in spans]
    assert pieces == ["Die", "Vers", "orgung", "von", "Hand", "verletzungen", None, "–", "2,5",
                      "mg", ".", None]
    # A piece the tokenizer could not spell (<unk>) covers the characters up to the next one.
    assert align_pieces("Die Vers☃ von", ["▁Die", "▁Vers", "<unk>", "▁von"], set()) == [
        (0, 3), (4, 8), (8, 9), (10, 13)]
