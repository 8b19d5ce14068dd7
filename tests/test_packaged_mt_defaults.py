"""The packaged en↔pt pair is what medstream translates with when no MT model is named: the
choice of the default (fast tier), and end to end through ``medstream transcribe`` on
espeak-ng speech (full tier: loads Whisper base)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from speech.errors import InvalidOptionError
from streaming.cli.app import app
from streaming.stages import TranslationSpec
from tests.conftest import speak
from translate.catalog import load_mt_model
from translate.defaults import (
    PACKAGED_NAME,
    load_packaged,
    packaged_directions,
    packaged_directions_into,
)


def test_the_default_is_the_packaged_pair_where_it_translates_what_is_spoken() -> None:
    assert TranslationSpec("pt").packaged_default(None) == "bergamot-en-pt"
    assert TranslationSpec("pt-BR").packaged_default("en") == "bergamot-en-pt"
    assert TranslationSpec("en").packaged_default("pt-BR") == "bergamot-pt-en"
    # Spoken Portuguese into Portuguese: nothing to translate with (the batch leaves a segment
    # already in the target language untranslated; other segments need --mt-model).
    assert TranslationSpec("pt").packaged_default("pt") is None
    # Auto-detected speech, or a language the pair does not read: Whisper's speech translation.
    assert TranslationSpec("en").packaged_default(None) is None
    assert TranslationSpec("en").packaged_default("de") is None
    # Nothing packaged translates into German.
    assert TranslationSpec("de").packaged_default("en") is None
    # A bilingual recording translated into the other party's language: both directions.
    assert TranslationSpec("other", parties=("en", "pt")).packaged_default(None) == "bergamot"
    assert TranslationSpec("other", parties=("pt-BR", "en")).packaged_default(None) == "bergamot"
    assert TranslationSpec("other", parties=("en", "de")).packaged_default(None) is None


def test_packaged_directions_between_and_into_languages() -> None:
    assert packaged_directions(["en", "pt-BR"]) == [("en", "pt"), ("pt", "en")]
    assert packaged_directions(["en", "de"]) == []
    assert packaged_directions_into("pt") == [("en", "pt")]
    assert packaged_directions_into("fr") == []


def test_one_engine_holds_both_directions_and_names_both_pinned_models() -> None:
    engine = load_packaged()
    assert engine.directions == {("en", "pt"), ("pt", "en")}
    assert "bergamot-en-pt" in engine.identifier and "bergamot-pt-en" in engine.identifier
    assert load_mt_model(PACKAGED_NAME).identifier == engine.identifier
    only = load_packaged([("pt", "en")])
    assert only.directions == {("pt", "en")} and "bergamot-en-pt" not in only.identifier
    with pytest.raises(ValueError, match="en→de"):
        load_packaged([("en", "de")])
    with pytest.raises(InvalidOptionError, match="backend auto"):
        load_mt_model(PACKAGED_NAME, backend="ctranslate2")


def _translated_speech(folder: Path, spoken: str, target: str) -> tuple[str, str]:
    """Transcribe the one recording in ``folder/audio`` (spoken in ``spoken``) with Whisper base
    and ``--translate-to target``, no MT model named: (the translation model, the translation
    joined, lower case). The cascade must have translated it."""
    result = CliRunner().invoke(app, ["transcribe", str(folder / "audio"), "-o",
                                      str(folder / "out"), "--model", "base", "--language",
                                      spoken, "--offline", "--translate-to", target, "--format",
                                      "json"])
    assert result.exit_code == 0, result.output
    (output,) = (folder / "out").glob("*.json")
    document = json.loads(output.read_text(encoding="utf-8"))
    assert document["translation"]["method"] == "text"
    text = " ".join(s["translation"]["text"] for s in document["segments"]).lower()
    return document["translation"]["model"], text


@pytest.mark.slow
def test_transcribe_translates_english_speech_into_portuguese_without_an_mt_model(
        tmp_path: Path) -> None:
    (tmp_path / "audio").mkdir()
    speak("The patient has chest pain and a high fever since yesterday.",
          tmp_path / "audio" / "clinician.wav")
    model, portuguese = _translated_speech(tmp_path, "en", "pt")
    assert "bergamot-en-pt" in model
    assert "dor no peito" in portuguese and "febre" in portuguese


@pytest.mark.slow
def test_portuguese_speech_to_english_goes_through_the_cascade(tmp_path: Path) -> None:
    (tmp_path / "audio").mkdir()
    speak("Estou com muita dor de garganta.", tmp_path / "audio" / "paciente.wav",
          voice="pt-br", words_per_minute=120)
    model, english = _translated_speech(tmp_path, "pt", "en")
    assert "bergamot-pt-en" in model
    assert "sore throat" in english


@pytest.mark.slow
def test_medstream_translate_uses_the_packaged_pair_without_model() -> None:
    result = CliRunner().invoke(app, ["translate", "Take 500 mg of amoxicillin for the chest "
                                      "pain.", "--from", "en", "--to", "pt-BR", "--terms",
                                      "none"])
    assert result.exit_code == 0, result.output
    assert "amoxicilina" in result.output and "500 mg" in result.output
    refused = CliRunner().invoke(app, ["translate", "Fieber", "--from", "de", "--to", "en"])
    assert refused.exit_code == 2 and "packaged pair translates en→pt" in refused.output
