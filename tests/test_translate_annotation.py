"""Inline term annotation (translate/annotation.py): what the source becomes, which terms are
annotated, how a model announces it, and the Translator's hook that feeds it to such a model."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from recipes.mt.tiny_marian import train_sentencepiece, write_tokenizer
from speech.errors import InvalidOptionError
from tests.mt_families import FALLBACK_LINES
from translate.annotation import (
    METADATA_FILE,
    TermAnnotation,
    annotate_terms,
    read_annotation,
)
from translate.backends.base import DecodeRequest, DecodeSettings, Hypothesis, MTBackend
from translate.constraints import glossary_constraints
from translate.glossary import Glossary
from translate.tokenization import ModelTokenizer
from translate.translator import Terminology, Translator
from translate.types import GlossaryEntry, TermConstraint, TranslateOptions

pytestmark = pytest.mark.filterwarnings("ignore:Recommended. pip install sacremoses")

MARKERS = ("<t>", "</t>")


def _at(text: str, term: str, target: str, origin: str = "glossary") -> TermConstraint:
    start = text.index(term)
    return TermConstraint(term, target, start, start + len(term), origin)  # type: ignore[arg-type]


def test_multi_word_terms_get_their_target_appended() -> None:
    text = "Die Therapie der Wahl ist Cortison bei Asthma."
    constraints = [_at(text, "Therapie der Wahl", "treatment of choice", "segment"),
                   _at(text, "Asthma", "asthma")]
    result = annotate_terms(text, constraints)
    assert result.text == ("Die Therapie der Wahl <t> treatment of choice </t> ist Cortison "
                           "bei Asthma <t> asthma </t>.")
    assert result.annotated == (0, 1)
    first, second = result.constraints
    assert result.text[first.start:first.end] == "Therapie der Wahl <t> treatment of choice </t>"
    assert result.text[second.start:second.end] == "Asthma <t> asthma </t>"
    assert (first.source, first.target, first.origin) == ("Therapie der Wahl",
                                                          "treatment of choice", "segment")


def test_of_overlapping_terms_the_leftmost_then_the_longest_is_annotated() -> None:
    text = "Akute Niereninsuffizienz und chronische Niereninsuffizienz"
    longer = _at(text, "Akute Niereninsuffizienz", "acute renal failure")
    inner = _at(text, "Niereninsuffizienz", "renal failure")
    result = annotate_terms(text, [inner, longer])
    assert result.text == ("Akute Niereninsuffizienz <t> acute renal failure </t> und "
                           "chronische Niereninsuffizienz")
    assert result.annotated == (1,)
    moved_inner = result.constraints[0]
    assert result.text[moved_inner.start:moved_inner.end] == (
        "Niereninsuffizienz <t> acute renal failure </t>")

    text = "A B C"
    left, right = _at(text, "A B", "x"), _at(text, "B C", "a much longer target")
    assert annotate_terms(text, [right, left]).text == "A B <t> x </t> C"


def test_case_of_the_source_is_kept_and_numbers_and_unlocated_terms_are_not_annotated() -> None:
    text = "HYPERTONIE und hypertonie, 5 mg."
    glossary = Glossary([GlossaryEntry("Hypertonie", "hypertension")], "de", "en")
    found = glossary_constraints(text, glossary)
    number = TermConstraint("5 mg", "5 mg", text.index("5"), text.index("5") + 4, "number")
    loose = TermConstraint("Blutdruck", "blood pressure", origin="segment")
    result = annotate_terms(text, [*found, number, loose], MARKERS)
    assert result.text == ("HYPERTONIE <t> hypertension </t> und hypertonie <t> hypertension "
                           "</t>, 5 mg.")
    assert result.annotated == (0, 1)
    moved = result.constraints[2]
    assert result.text[moved.start:moved.end] == "5 mg"
    assert result.constraints[3] == loose
    assert annotate_terms(text, []).text == text


def test_markers_must_be_two_words() -> None:
    with pytest.raises(ValueError, match="two markers"):
        annotate_terms("x", [], ("<t>",))
    with pytest.raises(ValueError, match="two markers"):
        TermAnnotation(markers=("<t >", "</t>"))


def test_a_model_announces_annotation_in_its_metadata(tmp_path: Path) -> None:
    assert read_annotation(tmp_path) is None
    (tmp_path / METADATA_FILE).write_text(json.dumps({"architecture": "marian"}))
    assert read_annotation(tmp_path) is None
    (tmp_path / METADATA_FILE).write_text(json.dumps(TermAnnotation().metadata()))
    assert read_annotation(tmp_path, lambda: {"<t>": 5, "</t>": 6}) == TermAnnotation()
    with pytest.raises(InvalidOptionError, match="vocabulary lacks"):
        read_annotation(tmp_path, lambda: {"<t>": 5})
    (tmp_path / METADATA_FILE).write_text(json.dumps({"term_annotation": "factors"}))
    with pytest.raises(InvalidOptionError, match="unknown term annotation scheme"):
        read_annotation(tmp_path)


# ---------------------------------------------------------------------------------- the hook


class DroppingBackend(MTBackend):
    """Copies the source, minus annotations (marker to marker): a model that ignores them.
    Each output token attends to the source token it copies. Records what it was given."""

    def __init__(self, tokenizer: ModelTokenizer, annotation: TermAnnotation | None) -> None:
        self.tokenizer = tokenizer
        self.annotation = annotation
        self.identifier = "dropping"
        self.sources: list[tuple[str, ...]] = []

    def generate(self, requests: Sequence[DecodeRequest],
                 settings: DecodeSettings) -> list[list[Hypothesis]]:
        found = []
        for request in requests:
            self.sources.append(request.source)
            kept, inside = [], False
            for index, token in enumerate(request.source[:-1]):
                inside = (inside or token == "<t>") and token != "</t>"
                if not inside and token not in ("<t>", "</t>"):
                    kept.append(index)
            tokens = tuple(request.source[i] for i in kept)
            attention = tuple(tuple(float(i == k) for i in range(len(request.source)))
                              for k in kept)
            found.append([Hypothesis(tokens, 0.0, attention if settings.attention else None)]
                         * settings.num_hypotheses)
        return found


@pytest.fixture(scope="module")
def marker_tokenizer(tmp_path_factory: pytest.TempPathFactory) -> ModelTokenizer:
    folder = tmp_path_factory.mktemp("marker-tokenizer")
    train_sentencepiece(FALLBACK_LINES, folder / "joint.spm", 200, user_symbols=MARKERS)
    return ModelTokenizer(write_tokenizer(folder / "joint.spm", folder / "hf"))


TEXT = "Der Blutdruck war erhöht."


def _translator(tokenizer: ModelTokenizer,
                annotation: TermAnnotation | None) -> tuple[Translator, DroppingBackend]:
    backend = DroppingBackend(tokenizer, annotation)
    glossary = [GlossaryEntry("Blutdruck", "blood pressure")]
    return Translator(backend, Terminology(glossary, numbers=False)), backend


@pytest.mark.parametrize(("terms", "annotate", "expected"), [
    ("none", None, False), ("soft", None, True), ("hard", None, True),
    ("none", True, True), ("hard", False, False)])
def test_the_translator_annotates_the_source_as_the_options_say(
        marker_tokenizer: ModelTokenizer, terms: str, annotate: bool | None,
        expected: bool) -> None:
    translator, backend = _translator(marker_tokenizer, TermAnnotation())
    options = TranslateOptions(terms=terms, annotate=annotate)  # type: ignore[arg-type]
    (result,) = translator.translate([TEXT], "de", "en", options)
    assert ("<t>" in backend.sources[0]) is expected
    assert ("</t>" in backend.sources[0]) is expected
    assert result.source_text == TEXT
    assert [(u.source, u.target) for u in result.terms] == [("Blutdruck", "blood pressure")]


def test_a_model_without_annotation_training_never_gets_annotations(
        marker_tokenizer: ModelTokenizer) -> None:
    translator, backend = _translator(marker_tokenizer, None)
    translator.translate([TEXT], "de", "en", TranslateOptions(terms="hard", annotate=True))
    assert "<t>" not in backend.sources[0]


def test_hard_mode_places_a_missed_term_where_its_annotated_source_was(
        marker_tokenizer: ModelTokenizer) -> None:
    translator, backend = _translator(marker_tokenizer, TermAnnotation())
    (result,) = translator.translate([TEXT], "de", "en", TranslateOptions(terms="hard"))
    assert "<t>" in backend.sources[0]
    (use,) = result.terms
    assert use.forced and use.satisfied
    assert result.text.startswith("Der blood pressure war")
