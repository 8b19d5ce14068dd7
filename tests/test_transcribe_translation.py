"""`medstream transcribe --translate-to`: Whisper's speech translation of real German speech,
glossary terms checked, translations redone without recognising the audio again."""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from ner.lexicon import builtin_lexicon
from ner.recognizer import EntityRecognizer, LexiconRecognizer
from speech.types import Segment
from streaming.annotate import EntityAnnotator
from streaming.cli.app import app
from streaming.document import TranslationMethod
from streaming.enrich import (
    AudioSource,
    SegmentEnrichment,
    SegmentToTranslate,
    TranslationTarget,
)
from tests.conftest import SPEECH
from translate.types import Translation

GERMAN = SPEECH / "fleurs_cuttledoc" / "fleurs-de-001.ogg"


def _invoke(args: list[str]) -> Result:
    return CliRunner().invoke(app, args, env={"COLUMNS": "300"})


@pytest.fixture
def german(tmp_path: Path) -> Path:
    if not GERMAN.is_file():
        pytest.skip(f"{GERMAN} is absent")
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(GERMAN, folder / "clip.ogg")
    return folder


def test_speech_translation_to_english_with_glossary_report(german: Path,
                                                            tmp_path: Path) -> None:
    glossary = tmp_path / "glossary.tsv"
    glossary.write_text("source\ttarget\nDinosaurier\tdinosaur\nWasser\twater\n",
                        encoding="utf-8")
    out = tmp_path / "out"
    args = ["transcribe", str(german), "--out", str(out), "--offline", "--translate-to", "en"]
    result = _invoke([*args, "--glossary", str(glossary)])
    assert result.exit_code == 0, result.output
    assert "translation to en: base" in result.output and "(task=translate)" in result.output
    data = json.loads((out / "clip.json").read_text())
    assert data["language"] == "de"
    assert data["translation"]["method"] == "speech"
    translations = [s["translation"] for s in data["segments"]]
    assert all(t is not None and t["source_language"] == "de" for t in translations)
    english = " ".join(t["text"] for t in translations).lower()
    # The reference: "he also attacked everything that came into the water; even a great
    # dinosaur such as T. rex was no match for it".
    assert "water" in english and "dinosaur" in english
    reported = {u["target"]: u["satisfied"] for t in translations for u in t["terms"]}
    assert reported == {"water": True, "dinosaur": True}
    txt = (out / "clip.txt").read_text().splitlines()
    assert txt[1].startswith("  [en] ")
    srt = (out / "clip.srt").read_text()
    assert f"<i>{translations[0]['text']}</i>" in srt

    # Another glossary: the translation is redone, the transcript kept.
    glossary.write_text("source\ttarget\nDinosaurier\tsaurian\n", encoding="utf-8")
    again = _invoke([*args, "--glossary", str(glossary)])
    assert again.exit_code == 0 and "1 transcribed" in again.output
    redone = json.loads((out / "clip.json").read_text())
    assert redone["segments"][0]["text"] == data["segments"][0]["text"]
    assert redone["translation"]["fingerprint"] != data["translation"]["fingerprint"]
    terms = [u for s in redone["segments"] for u in s["translation"]["terms"]]
    assert [(u["target"], u["satisfied"]) for u in terms] == [("saurian", False)]

    # Without --translate-to the translations are removed again.
    plain = _invoke(["transcribe", str(german), "--out", str(out), "--offline"])
    assert plain.exit_code == 0
    assert "translation" not in json.loads((out / "clip.json").read_text())
    assert "[en]" not in (out / "clip.txt").read_text()


@pytest.mark.parametrize(("args", "message"), [
    (["--translate-to", "de"], "--translate-to de needs a text MT model"),
    (["--mt-model", "/nowhere"], "--mt-model and --glossary are used by --translate-to"),
    (["--translate-to", "en", "--terms", "strict"], "--terms must be one of hard, soft, none"),
    (["--translate-to", "en", "--model", "tiny.en"], "is English-only and cannot translate"),
    (["--translate-to", "other"], "--translate-to other needs the two languages"),
    (["--languages", "en,de", "--translate-to", "other"],
     "--translate-to other translates between the --languages with a text MT model"),
    (["--languages", "en,pt", "--language", "de"], "languages names two or more languages"),
    (["--languages", "en,pt", "--model", "tiny.en"], "is English-only"),
])
def test_translation_options_are_checked_before_any_work(german: Path, tmp_path: Path,
                                                         args: list[str], message: str) -> None:
    result = _invoke(["transcribe", str(german), "--out", str(tmp_path / "o"), "--offline",
                      *args])
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split())
    assert not (tmp_path / "o").exists()


def test_one_rule_says_where_a_segment_is_translated() -> None:
    fixed = TranslationTarget("en")
    assert (fixed.of("de"), fixed.of("en"), fixed.of("en-GB")) == ("en", None, None)
    parties = TranslationTarget(parties=("en", "es"))
    assert (parties.of("en"), parties.of("es"), parties.of("fr")) == ("es", "en", "en")
    assert TranslationTarget().of("de") is None
    assert (str(fixed), str(parties)) == ("en", "en↔es")
    with pytest.raises(ValueError, match="not both"):
        TranslationTarget("en", ("en", "es"))


class _Echo:
    """A translator that records what it was asked and echoes the text."""

    method: TranslationMethod = "text"
    model = "echo"
    fingerprint = "e"

    def __init__(self, target: TranslationTarget) -> None:
        self.target = target
        self.asked: list[SegmentToTranslate] = []

    def translate(self, segments: Sequence[SegmentToTranslate],
                  audio: AudioSource | None) -> list[Translation]:
        self.asked += segments
        return [Translation(s.segment.text.upper(), s.segment.text, s.language, s.target)
                for s in segments]


def test_the_stage_translates_what_is_outside_the_target_with_its_entities() -> None:
    annotator = EntityAnnotator(EntityRecognizer([LexiconRecognizer([builtin_lexicon("en")])]),
                                "built-in lexicon", "l")
    echo = _Echo(TranslationTarget("de"))
    stage = SegmentEnrichment(annotator, echo)
    segments = [Segment(0, 0.0, 1.0, "I have chest pain."), Segment(1, 1.0, 2.0, "  "),
                Segment(2, 2.0, 3.0, "Ja, seit gestern.", language="de"),
                Segment(3, 3.0, 4.0, "No fever.", language="en")]
    enriched = stage.enrich(segments, "en")
    # The segment without a language is in the recording's; blank and German ones are kept.
    assert [(r.segment.id, r.language, r.target) for r in echo.asked] == [
        (0, "en", "de"), (3, "en", "de")]
    assert [e.text for e in echo.asked[0].entities] == ["chest pain"]
    assert [e.translation.text if e.translation else None for e in enriched] == [
        "I HAVE CHEST PAIN.", None, None, "NO FEVER."]
    assert [len(e.entities or ()) for e in enriched] == [1, 0, 0, 1]
    plain = SegmentEnrichment().enrich(segments, "en")
    assert not SegmentEnrichment().active
    assert all(e.entities is None and e.translation is None for e in plain)
