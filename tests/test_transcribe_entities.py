"""`medstream transcribe --entities`: entities per segment in json, highlighted in txt/srt/vtt,
added to or removed from finished transcripts without recognising the audio again."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import pytest
import soundfile as sf
import srt
import webvtt
from typer.testing import CliRunner

from ner.catalog import SHIPPED_MODELS
from ner.lexicon import builtin_lexicon
from ner.recognizer import EntityRecognizer, LexiconRecognizer
from ner.schema import AttributeType, EntityType
from ner.types import Attribute, Entity
from speech.audio import SAMPLE_RATE, load_audio
from speech.options import TranscribeOptions
from speech.types import Segment, TranscriptionInfo
from streaming.annotate import EntityAnnotator
from streaming.batch.job import BatchJob, BatchTranscriber, discover_inputs
from streaming.batch.writers import marks_of, render_srt, render_txt, render_vtt
from streaming.cli.app import app
from streaming.document import EntityAnnotations, SourceFile, TranscriptDocument
from tests.conftest import SPEECH

TEXT = "Amoxicillin 500 mg three times daily by mouth. No fever, knee <pain> & rash."


def _annotated() -> TranscriptDocument:
    amox = Entity(0, 11, "Amoxicillin", EntityType.MEDICATION, 0.97, "model", attributes=(
        Attribute(AttributeType.STRENGTH, 12, 18, "500 mg"),
        Attribute(AttributeType.FREQUENCY, 19, 36, "three times daily"),
        Attribute(AttributeType.ROUTE, 37, 45, "by mouth")))
    fever = Entity(50, 55, "fever", EntityType.MEDICAL_CONDITION, 1.0, "lexicon", negated=True)
    knee = Entity(57, 61, "knee", EntityType.ANATOMY, 1.0, "lexicon", code="T-D9200")
    segments = (Segment(0, 0.0, 4.0, TEXT, language="en"),
                Segment(1, 4.0, 6.0, "Nothing else.", language="en"))
    info = TranscriptionInfo(language="en", language_probability=1.0, duration=6.0,
                             duration_after_vad=6.0, task="transcribe", model="base")
    return TranscriptDocument(SourceFile("a.wav", 1, "0" * 64), info, segments, "f" * 16,
                              EntityAnnotations("medical-en", "e" * 16, ((amox, fever, knee), ())))


def test_json_carries_entities_per_segment_and_reads_them_back() -> None:
    doc = _annotated()
    data = json.loads(doc.to_json())
    assert data["ner"] == {"model": "medical-en", "fingerprint": "e" * 16}
    first = data["segments"][0]["entities"]
    assert first[0]["type"] == "MEDICATION" and first[0]["text"] == "Amoxicillin"
    assert [a["type"] for a in first[0]["attributes"]] == ["STRENGTH", "FREQUENCY", "ROUTE"]
    assert first[1]["negated"] is True and first[2]["code"] == "T-D9200"
    assert data["segments"][1]["entities"] == []
    for entity in first:
        assert TEXT[entity["start"]:entity["end"]] == entity["text"]
    assert TranscriptDocument.from_json(doc.to_json()) == doc


def test_entity_lists_must_match_the_segments() -> None:
    doc = _annotated()
    with pytest.raises(ValueError, match="1 entity lists for 2 segments"):
        TranscriptDocument(doc.source, doc.info, doc.segments, doc.fingerprint,
                           EntityAnnotations("m", "e", ((),)))


def test_attributes_are_marked_unless_an_entity_covers_them() -> None:
    doc = _annotated()
    assert doc.entities is not None
    labels = [m.label for m in marks_of(doc.entities.per_segment[0])]
    assert labels == ["MEDICATION", "STRENGTH", "FREQUENCY", "ROUTE", "MEDICAL_CONDITION",
                      "ANATOMY"]


def test_txt_marks_each_entity_with_its_type_and_negation() -> None:
    assert render_txt(_annotated()).splitlines() == [
        "[Amoxicillin|MEDICATION] [500 mg|STRENGTH] [three times daily|FREQUENCY] "
        "[by mouth|ROUTE]. No [fever|MEDICAL_CONDITION|negated], [knee|ANATOMY] <pain> & rash.",
        "Nothing else."]
    assert render_txt(_annotated(), highlight=False).splitlines()[0] == TEXT


def test_srt_colours_entities_and_parses_back() -> None:
    cue, _ = srt.parse(render_srt(_annotated()))
    assert cue.content.startswith('<font color="#1e88e5">Amoxicillin</font> <font color=')
    assert '<i><font color="#e53935">fever</font></i>' in cue.content
    plain, _ = srt.parse(render_srt(_annotated(), highlight=False))
    assert plain.content == TEXT


def test_vtt_uses_class_spans_with_a_style_block_and_escapes_markup() -> None:
    rendered = render_vtt(_annotated())
    assert rendered.startswith("WEBVTT\n\nSTYLE\n::cue(.medication) { color: #1e88e5; }")
    assert "<c.medical_condition.negated>fever</c>" in rendered
    assert "<c.anatomy>knee</c> &lt;pain&gt; &amp; rash." in rendered
    captions = webvtt.from_string(rendered).captions
    # webvtt-py strips the tags; a browser also resolves the character references.
    assert html.unescape(captions[0].text) == TEXT
    assert "STYLE" not in render_vtt(_annotated(), highlight=False)


def _lexicon_annotator(fingerprint: str) -> EntityAnnotator:
    recognizer = EntityRecognizer([LexiconRecognizer([builtin_lexicon("en")])])
    return EntityAnnotator(recognizer, "built-in lexicon", fingerprint)


class _CountingBackend:
    """The real tiny.en backend, counting how often audio is recognised."""

    def __init__(self, backend: Any) -> None:
        self.backend = backend
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.backend, name)

    def transcribe(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        return self.backend.transcribe(*args, **kwargs)


def test_entities_are_added_redone_and_removed_without_recognising_again(
        tmp_path: Path, tiny_en: Any) -> None:
    speech = SPEECH / "pocketsphinx_testdata/goforward.wav"
    if not speech.is_file():
        pytest.skip(f"{speech} is absent")
    inputs, _ = discover_inputs([speech])
    out = tmp_path / "out"
    job = BatchJob(out_dir=out, options=TranscribeOptions(language="en"))
    backend = _CountingBackend(tiny_en)

    def run(annotator: EntityAnnotator | None) -> tuple[str, dict[str, Any]]:
        outcome = BatchTranscriber(backend, job, annotator=annotator).run(inputs).outcomes[0]
        assert outcome.status != "failed", outcome.error
        return outcome.status, json.loads((out / "goforward.json").read_text())

    status, plain = run(None)
    assert (status, "ner" in plain, backend.calls) == ("done", False, 1)
    status, tagged = run(_lexicon_annotator("v1"))
    assert (status, tagged["ner"]["fingerprint"], backend.calls) == ("done", "v1", 1)
    assert all("entities" in s for s in tagged["segments"])
    assert tagged["segments"] == [{**s, "entities": t["entities"]}
                                  for s, t in zip(plain["segments"], tagged["segments"],
                                                  strict=True)]
    assert run(_lexicon_annotator("v1"))[0] == "skipped"
    status, retagged = run(_lexicon_annotator("v2"))
    assert (status, retagged["ner"]["fingerprint"], backend.calls) == ("done", "v2", 1)
    status, untagged = run(None)
    assert (status, "ner" in untagged, backend.calls) == ("done", False, 1)
    assert untagged == plain


@pytest.fixture(scope="module")
def consultation(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """51 s of a recorded OSCE consultation: past history (diabetes, blood pressure,
    cholesterol), medications and "No allergies"."""
    source = SPEECH / "fareez_osce_en/audio/CAR0002.mp3"
    if not source.is_file():
        pytest.skip(f"{source} is absent")
    audio = load_audio(source)[320 * SAMPLE_RATE:371 * SAMPLE_RATE]
    folder = tmp_path_factory.mktemp("consultation")
    sf.write(folder / "history.wav", audio, SAMPLE_RATE, subtype="PCM_16")
    return folder


def test_transcribe_entities_on_a_recorded_consultation(consultation: Path,
                                                        tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = CliRunner().invoke(app, [
        "transcribe", str(consultation), "--out", str(out), "--language", "en", "--offline",
        "--entities"], env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    shipped = f"medical-en (sha256:{SHIPPED_MODELS['medical-en'].weights_sha256[:12]})"
    assert f"entities: {shipped}" in result.output
    data = json.loads((out / "history.json").read_text())
    assert data["ner"]["model"] == shipped
    found = [(e["type"], e["text"].lower(), e.get("negated", False))
             for s in data["segments"] for e in s["entities"]]
    for segment in data["segments"]:
        for entity in segment["entities"]:
            assert segment["text"][entity["start"]:entity["end"]] == entity["text"]
    assert ("MEDICAL_CONDITION", "diabetes", False) in found
    assert ("MEDICAL_CONDITION", "high blood pressure", False) in found
    assert ("MEDICAL_CONDITION", "allergies", True) in found
    txt = (out / "history.txt").read_text()
    assert "[diabetes|MEDICAL_CONDITION]" in txt
    assert "[allergies|MEDICAL_CONDITION|negated]" in txt
    assert '<font color="#e53935">diabetes</font>' in (out / "history.srt").read_text()

    # The same run again finds everything done; --no-highlight rewrites only the renderings.
    again = CliRunner().invoke(app, [
        "transcribe", str(consultation), "--out", str(out), "--language", "en", "--offline",
        "--entities", "--no-highlight"], env={"COLUMNS": "300"})
    assert again.exit_code == 0 and "0 transcribed, 1 skipped" in again.output
    assert "[" not in (out / "history.txt").read_text()
    assert json.loads((out / "history.json").read_text()) == data


def test_lexicon_without_entities_is_refused(tmp_path: Path) -> None:
    terms = tmp_path / "terms.tsv"
    terms.write_text("term\ttype\nfiebre\tMEDICAL_CONDITION\n")
    result = CliRunner().invoke(app, ["transcribe", str(tmp_path), "--lexicon", str(terms)])
    assert result.exit_code == 2 and "--lexicon is used by --entities" in result.output
