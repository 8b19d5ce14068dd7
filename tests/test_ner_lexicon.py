"""The lexicon matcher: inflections, case, accents, offsets, term lists, glossaries, scale."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from itertools import pairwise
from pathlib import Path
from typing import overload

import pytest

from ner.folding import Folder
from ner.lexicon import LexiconMatcher, builtin_lexicon
from ner.schema import EntityType
from ner.terms import Term, load_term_list
from ner.types import Entity
from speech.errors import DataFileError, InvalidOptionError
from tests.conftest import TICO_TERMS
from tests.datafile_errors import assert_refused

CONDITION = EntityType.MEDICAL_CONDITION
MEDICATION = EntityType.MEDICATION


def spans(entities: Sequence[Entity]) -> list[tuple[str, str]]:
    return [(entity.text, entity.type.value) for entity in entities]


def check_offsets(text: str, entities: Sequence[Entity]) -> None:
    for entity in entities:
        assert text[entity.start:entity.end] == entity.text


def test_seed_list_finds_plurals_and_any_case_with_offsets() -> None:
    text = "Patient has FEVERS and chest pains; took two Aspirins and ibuprofen."
    found = builtin_lexicon().find_entities(text)
    assert spans(found) == [("FEVERS", "MEDICAL_CONDITION"), ("chest pains", "MEDICAL_CONDITION"),
                            ("Aspirins", "MEDICATION"), ("ibuprofen", "MEDICATION")]
    check_offsets(text, found)
    assert all(e.source == "lexicon" and e.score == 1.0 and e.code is None for e in found)


def test_seed_list_is_real_and_loads_without_duplicates() -> None:
    lexicon = builtin_lexicon("en-US")
    assert lexicon.size >= 100
    assert lexicon.duplicates == 0 and lexicon.unmatchable == ()


def test_no_builtin_list_for_other_languages_says_what_exists() -> None:
    with pytest.raises(InvalidOptionError, match="available: en"):
        builtin_lexicon("vi")


def test_whole_words_only_and_leftmost_longest() -> None:
    lexicon = LexiconMatcher([Term("fever", CONDITION), Term("chest", EntityType.ANATOMY),
                              Term("chest pain", CONDITION), Term("pain", CONDITION)], "en")
    assert lexicon.find_entities("feverish, no painkillers") == []
    assert spans(lexicon.find_entities("severe chest pain")) == [
        ("chest pain", "MEDICAL_CONDITION")]


def test_terms_do_not_span_sentence_punctuation_but_do_span_hyphens() -> None:
    lexicon = LexiconMatcher([Term("chest pain", CONDITION), Term("x-ray", CONDITION)], "en")
    assert lexicon.find_entities("my chest. Pain started") == []
    assert lexicon.find_entities("my chest, pain") == []
    assert spans(lexicon.find_entities("chest-pain and an X ray")) == [
        ("chest-pain", "MEDICAL_CONDITION"), ("X ray", "MEDICAL_CONDITION")]


def test_unicode_normalisation_keeps_original_offsets() -> None:
    text = "Ｆｅｖｅｒ and Straße"
    lexicon = LexiconMatcher([Term("fever", CONDITION), Term("STRASSE", EntityType.ANATOMY)],
                             "en")
    found = lexicon.find_entities(text)
    assert spans(found) == [("Ｆｅｖｅｒ", "MEDICAL_CONDITION"), ("Straße", "ANATOMY")]
    check_offsets(text, found)


def test_accent_insensitive_only_when_asked() -> None:
    terms = [Term("fièvre", CONDITION)]
    assert LexiconMatcher(terms, "fr").find_entities("pas de fievre") == []
    found = LexiconMatcher(terms, "fr", ignore_accents=True).find_entities("pas de fievre, Fièvres")
    assert spans(found) == [("fievre", "MEDICAL_CONDITION"), ("Fièvres", "MEDICAL_CONDITION")]


@pytest.mark.parametrize(("language", "term", "text", "expected"), [
    ("en", "allergy", "two allergies", "allergies"),
    ("en", "abscess", "abscesses", "abscesses"),
    ("en", "disease", "chronic diseases", "diseases"),
    ("de", "Tablette", "zwei Tabletten", "Tabletten"),
    ("de", "Kopfschmerz", "starke Kopfschmerzen", "Kopfschmerzen"),
    ("de", "akute Bronchitis", "einer akuten Bronchitis", "akuten Bronchitis"),
    ("fr", "comprimé", "deux comprimés", "comprimés"),
    ("fr", "hôpital", "les hôpitaux", "hôpitaux"),
    ("es", "dolor", "dolores fuertes", "dolores"),
    ("es", "tableta", "dos tabletas", "tabletas"),
    ("es", "paciente", "los pacientes", "pacientes"),
])
def test_inflections_per_language(language: str, term: str, text: str, expected: str) -> None:
    found = LexiconMatcher([Term(term, CONDITION)], language).find_entities(text)
    assert [entity.text for entity in found] == [expected]


def test_inflection_rules_do_not_join_unrelated_words() -> None:
    folder = Folder("de")
    assert folder.key("Leber") != folder.key("Leben")
    assert Folder("en").key("diagnosis") == "diagnosis"
    assert LexiconMatcher([Term("tablet", MEDICATION)], "en", inflections=False).find_entities(
        "tablets") == []


def test_term_list_with_codes_tsv_and_csv(tmp_path: Path) -> None:
    tsv = tmp_path / "terms.tsv"
    tsv.write_text("# a comment\nterm\ttype\tcode\nmetformin\tmedication\tRX-1\n"
                   "type 2 diabetes\tMEDICAL_CONDITION\tICD-E11\nfever\tMEDICAL_CONDITION\n",
                   encoding="utf-8")
    csv = tmp_path / "terms.csv"
    csv.write_text('term,type,code\n"heart, left",ANATOMY,\n', encoding="utf-8")
    assert load_term_list(csv) == [Term("heart, left", EntityType.ANATOMY)]
    found = LexiconMatcher.from_term_list(tsv, "en").find_entities("Metformin for Type 2 Diabetes")
    assert [(e.text, e.code) for e in found] == [("Metformin", "RX-1"),
                                                 ("Type 2 Diabetes", "ICD-E11")]


@pytest.mark.parametrize(("content", "line", "message"), [
    ("term\ttype\nfever\tDISEASE\n", 2, "unknown entity type 'DISEASE'"),
    ("fever\tMEDICAL_CONDITION\n\nonly-one-column\n", 3, "expected the columns"),
    ("\tMEDICATION\n", 1, "the term is empty"),
])
def test_malformed_term_list_names_file_and_line(tmp_path: Path, content: str, line: int,
                                                 message: str) -> None:
    assert_refused(load_term_list, tmp_path / "bad.tsv", content, line, message)


def test_missing_term_list_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DataFileError, match="cannot read the term list"):
        load_term_list(tmp_path / "absent.tsv")


def test_french_glossary_terms_found_in_a_french_sentence() -> None:
    if not TICO_TERMS.is_file():
        pytest.skip(f"{TICO_TERMS} is absent: the shared terminology data is not on this machine")
    from translate.glossary import read_glossary

    entries = read_glossary(TICO_TERMS, "en", "fr")
    lexicon = LexiconMatcher.from_glossary(entries, CONDITION)
    assert lexicon.language == "fr" and lexicon.size > 300
    text = "Le patient a une forte fièvre et une toux sèche ; radiographie du thorax demain."
    found = lexicon.find_entities(text)
    assert spans(found) == [("forte fièvre", "MEDICAL_CONDITION"),
                            ("toux sèche", "MEDICAL_CONDITION"),
                            ("radiographie du thorax", "MEDICAL_CONDITION")]
    check_offsets(text, found)
    plural = lexicon.find_entities("Deux Pneumonies graves")
    assert [entity.text for entity in plural] == ["Pneumonies"]


def test_glossary_of_several_languages_is_refused() -> None:
    from translate.types import GlossaryEntry

    entries = [GlossaryEntry("fever", "Fieber", "en", "de"),
               GlossaryEntry("fever", "fièvre", "en", "fr")]
    with pytest.raises(ValueError, match="several languages"):
        LexiconMatcher.from_glossary(entries, CONDITION)
    source_side = LexiconMatcher.from_glossary(entries, CONDITION, side="source")
    assert source_side.language == "en" and source_side.duplicates == 1


class CountingKeys(Sequence[str]):
    """A key sequence that counts how often the matcher reads an element."""

    def __init__(self, keys: list[str]) -> None:
        self.keys = keys
        self.reads = 0

    def __len__(self) -> int:
        return len(self.keys)

    @overload
    def __getitem__(self, index: int) -> str: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[str]: ...

    def __getitem__(self, index: int | slice) -> str | Sequence[str]:
        if isinstance(index, slice):
            raise TypeError("the matcher must not copy slices of the text")
        self.reads += 1
        return self.keys[index]

    def __iter__(self) -> Iterator[str]:
        raise TypeError("the matcher reads keys by index")


def test_large_text_and_lexicon_each_word_read_a_bounded_number_of_times() -> None:
    syllables = ["ka", "lo", "mi", "ne", "ru", "ta", "vo", "xe", "zi", "pu"]
    names = [a + b + c + d for a in syllables for b in syllables for c in syllables
             for d in syllables[:3]]
    terms = [Term(f"{name} {names[(i * 7) % len(names)]}" if i % 3 else name, CONDITION)
             for i, name in enumerate(names)]
    lexicon = LexiconMatcher(terms, "en")
    assert lexicon.size == 3000 and lexicon.max_words == 2
    words = [names[(i * 13) % len(names)] for i in range(30_000)]
    text = " ".join(words)
    assert len(text) >= 200_000
    found = lexicon.find_entities(text)
    assert found and all(text[e.start:e.end] == e.text for e in found)
    assert all(a.end <= b.start for a, b in pairwise(found))
    keys = CountingKeys([lexicon.folder.key(word) for word in words])
    assert len(list(lexicon.scan(keys))) == len(found)
    assert keys.reads <= len(words) * lexicon.max_words
