"""Terminology-constrained translation with a Marian model trained here (``tiny_marian``):
hard mode honours every consistent WMT23 term, soft mode raises term success over none,
do-not-translate entries pass through, and the CLI and the batch cascade use it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from eval.readers import read_terminology_jsonl
from streaming.cli.app import app
from tests.conftest import SPEECH, WMT23
from translate.catalog import load_mt
from translate.constraints import pair_constraints
from translate.translator import Terminology, Translator
from translate.types import GlossaryEntry, TermConstraint, TranslateOptions, Translation

HELD_OUT = 120
"""Held-out WMT23 segments the tests translate (the model never saw the last 500)."""


def _invoke(args: list[str]) -> Result:
    return CliRunner().invoke(app, args, env={"COLUMNS": "300"})


@pytest.fixture(scope="module")
def translator(tiny_marian: Any) -> Translator:
    return Translator(load_mt(str(tiny_marian.ct2_dir)), Terminology(numbers=False))


@pytest.fixture(scope="module")
def held_out() -> tuple[list[str], list[list[TermConstraint]]]:
    if not WMT23.is_file():
        pytest.skip(f"{WMT23} is absent")
    segments = read_terminology_jsonl(WMT23)[-HELD_OUT:]
    terms = [pair_constraints(s.src, [(p.source, p.target) for p in s.terms_proper],
                              s.src_lang) for s in segments]
    return [s.src for s in segments], terms


def _success(results: list[Translation]) -> float:
    uses = [u for r in results for u in r.terms]
    return 100 * sum(u.satisfied for u in uses) / len(uses)


@pytest.mark.parametrize("repair", ["replace", "continue"])
def test_hard_mode_honours_every_consistent_term_where_free_decoding_does_not(
        translator: Translator, held_out: tuple[list[str], list[list[TermConstraint]]],
        repair: str) -> None:
    texts, terms = held_out
    free = translator.translate(texts, "de", "en", TranslateOptions(terms="none"), terms)
    options = TranslateOptions(terms="hard", repair="continue" if repair == "continue"
                               else "replace")
    hard = translator.translate(texts, "de", "en", options, terms)
    assert sum(len(r.terms) for r in hard) >= 300
    assert _success(hard) == 100.0
    assert _success(free) < 60.0
    forced = [u for r in hard for u in r.terms if u.forced]
    assert forced and all(u.satisfied for u in forced)
    assert not any(u.forced for r in free for u in r.terms)
    # The rest of the output is the model's: hard mode does not just list the terms.
    assert sum(len(r.text) for r in hard) > 1.2 * sum(len(u.target) for r in hard
                                                       for u in r.terms)


def test_soft_mode_raises_term_success_over_free_decoding(
        translator: Translator, held_out: tuple[list[str], list[list[TermConstraint]]]) -> None:
    texts, terms = held_out
    free = translator.translate(texts, "de", "en", TranslateOptions(terms="none"), terms)
    soft = translator.translate(texts, "de", "en", TranslateOptions(terms="soft"), terms)
    assert _success(soft) > _success(free)
    assert not any(u.forced for r in soft for u in r.terms)


def test_do_not_translate_entries_pass_through_untouched(tiny_marian: Any) -> None:
    glossary = [GlossaryEntry("Augmentin", "Augmentin", do_not_translate=True),
                GlossaryEntry("Xarelto", "Xarelto", do_not_translate=True)]
    translator = Translator(load_mt(str(tiny_marian.ct2_dir)), Terminology(glossary))
    texts = ["Der Patient erhielt Augmentin gegen die Infektion.",
             "Unter Xarelto traten Blutungen auf."]
    for result in translator.translate(texts, "de", "en", TranslateOptions(terms="hard")):
        (use,) = result.terms
        assert use.do_not_translate and use.satisfied
        assert use.target in result.text


def test_numbers_and_units_are_copied_with_the_target_decimal_separator(
        translator: Translator) -> None:
    numbers = Translator(translator.backend, Terminology(numbers=True))
    (result,) = numbers.translate(["Die Dosis betrug 2,5 mg pro Tag über 14 Tage."], "de",
                                  "en", TranslateOptions(terms="hard"))
    assert {(u.target, u.satisfied) for u in result.terms} == {("2.5 mg", True),
                                                                ("14", True)}


def test_transformers_backend_serves_the_same_model_in_hard_mode(
        tiny_marian: Any, held_out: tuple[list[str], list[list[TermConstraint]]]) -> None:
    texts, terms = held_out
    translator = Translator(load_mt(str(tiny_marian.hf_dir), backend="transformers"),
                            Terminology(numbers=False))
    hard = translator.translate(texts[:12], "de", "en", TranslateOptions(terms="hard"),
                                terms[:12])
    assert _success(hard) == 100.0


def test_translate_command_file_mode(tiny_marian: Any, tmp_path: Path) -> None:
    glossary = tmp_path / "clinic.tsv"
    glossary.write_text("source\ttarget\nHandverletzungen\thand injuries\n", encoding="utf-8")
    lines = [{"id": "a", "text": "Die Versorgung von Handverletzungen ist schwierig."},
             {"text": "Die Therapie der Wahl ist Cortison.",
              "terms": [{"source": "Therapie der Wahl", "target": "treatment of choice"}]}]
    source = tmp_path / "in.jsonl"
    source.write_text("\n".join([json.dumps(lines[0]), "{not json", json.dumps(lines[1])])
                      + "\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    result = _invoke(["translate", "--input", str(source), "--output", str(out), "--from", "de",
                      "--to", "en", "--model", str(tiny_marian.ct2_dir), "--glossary",
                      str(glossary)])
    assert result.exit_code == 1 and "1 line(s) could not be read" in result.output
    first, bad, second = (json.loads(line) for line in out.read_text().splitlines())
    assert first["id"] == "a" and first["mode"] == "hard"
    assert [(t["target"], t["satisfied"], t["origin"]) for t in first["terms"]] == [
        ("hand injuries", True, "glossary")]
    assert "hand injuries" in first["translation"]
    assert bad == {"line": 2, "error": "not valid JSON: Expecting property name enclosed in "
                                       "double quotes"}
    assert [(t["target"], t["origin"]) for t in second["terms"]] == [
        ("treatment of choice", "segment")]
    assert "treatment of choice" in second["translation"]

    text = _invoke(["translate", "Die Versorgung von Handverletzungen.", "--from", "de", "--to",
                    "en", "--model", str(tiny_marian.ct2_dir), "--glossary", str(glossary)])
    assert text.exit_code == 0 and "hand injuries" in text.output


def test_translate_command_without_a_model_says_how_to_get_one() -> None:
    result = _invoke(["translate", "Fieber", "--from", "de", "--to", "en"])
    assert result.exit_code == 2 and "--model is required" in result.output
    missing = _invoke(["translate", "Fieber", "--from", "de", "--to", "en", "--offline",
                       "--model", "opus-mt-de-en"])
    assert missing.exit_code == 2 and "Helsinki-NLP/opus-mt-de-en" in missing.output


def test_transcribe_cascade_translates_each_segment_with_the_glossary(
        tiny_marian: Any, tmp_path: Path) -> None:
    audio = SPEECH / "fleurs_cuttledoc" / "fleurs-de-001.ogg"
    if not audio.is_file():
        pytest.skip(f"{audio} is absent")
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(audio, folder / "clip.ogg")
    glossary = tmp_path / "g.csv"
    glossary.write_text("source,target\nDinosaurier,dinosaur\nT-Rex,T-Rex\n", encoding="utf-8")
    out = tmp_path / "out"
    result = _invoke(["transcribe", str(folder), "--out", str(out), "--offline",
                      "--translate-to", "en", "--mt-model", str(tiny_marian.ct2_dir),
                      "--glossary", str(glossary)])
    assert result.exit_code == 0, result.output
    data = json.loads((out / "clip.json").read_text())
    assert data["translation"]["method"] == "text"
    translations = [s["translation"] for s in data["segments"]]
    assert all(t is not None and t["mode"] == "hard" for t in translations)
    uses = [u for t in translations for u in t["terms"]]
    assert {u["target"] for u in uses} >= {"dinosaur"}
    assert all(u["satisfied"] for u in uses)
