"""`medstream transcribe --speakers`: segments split by speaker, speakers table and roles in
json, turns in txt, voice spans in vtt, prefixes in srt; speakers added to a finished batch
without recognising again; entities marked by the dialogue.

These tests run the batch job's own code with small stand-ins for the models (a recogniser
that reads a script, a diarizer that returns given turns, a role classifier that counts
questions); the full tier (tests/test_transcribe_speakers_e2e.py) runs the real models.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
import srt
import webvtt
from typer.testing import CliRunner

from ner.lexicon import builtin_lexicon
from ner.recognizer import EntityRecognizer, LexiconRecognizer
from ner.roles import RoleGuess
from speech.audio import SAMPLE_RATE
from speech.chunking import Span
from speech.diarization import SpeakerTurn
from speech.options import TranscribeOptions
from speech.types import Segment, TranscriptionInfo, Word
from streaming.annotate import EntityAnnotator
from streaming.batch.job import BatchJob, BatchTranscriber, discover_inputs
from streaming.batch.writers import render_srt, render_txt, render_vtt, speaker_labels
from streaming.cli.app import app
from streaming.document import (
    SourceFile,
    SpeakerAnnotations,
    SpeakerInfo,
    TranscriptDocument,
)
from streaming.speakers import (
    SpeakerStage,
    conversation_turns,
    marked_fingerprint,
    parse_speaker_count,
    without_speakers,
)


def _words(*spec: tuple[float, float, str]) -> tuple[Word, ...]:
    return tuple(Word(start, end, text, 0.9) for start, end, text in spec)


# A consultation as a recogniser cuts it: a segment may hold both speakers.
SCRIPT = (
    Segment(0, 0.0, 3.0, " Do you have any chest pain? No.", words=_words(
        (0.0, 0.3, " Do"), (0.3, 0.5, " you"), (0.5, 0.8, " have"), (0.8, 1.1, " any"),
        (1.1, 1.5, " chest"), (1.5, 2.0, " pain?"), (2.6, 3.0, " No.")), language="en"),
    Segment(1, 4.0, 7.0, " Any fever? Yes, since Monday.", words=_words(
        (4.0, 4.3, " Any"), (4.3, 4.9, " fever?"), (5.5, 5.9, " Yes,"), (5.9, 6.3, " since"),
        (6.3, 7.0, " Monday.")), language="en"),
    Segment(2, 7.6, 9.0, " It started at night.", words=_words(
        (7.6, 7.8, " It"), (7.8, 8.3, " started"), (8.3, 8.5, " at"), (8.5, 9.0, " night.")),
        language="en"),
)
# The diarizer's own names ("B" speaks first): the transcript numbers them S1, S2.
TURNS = [SpeakerTurn(0.0, 2.2, "B"), SpeakerTurn(2.4, 3.2, "A"), SpeakerTurn(3.9, 5.1, "B"),
         SpeakerTurn(5.3, 9.2, "A"), SpeakerTurn(9.5, 9.9, "C")]  # C: a cough, no words


class ScriptBackend:
    """A recogniser that 'hears' :data:`SCRIPT` in any recording, counting its calls."""

    identifier = "script"
    reproducibility_key = "script-v1"
    multilingual = False

    def __init__(self) -> None:
        self.calls = 0

    def check(self, options: TranscribeOptions) -> None:
        return None

    def transcribe(self, audio: np.ndarray, options: TranscribeOptions,
                   speech: Sequence[Span] | None = None
                   ) -> tuple[Iterator[Segment], TranscriptionInfo]:
        self.calls += 1
        info = TranscriptionInfo("en", 1.0, len(audio) / SAMPLE_RATE, 9.0, "transcribe",
                                 "script", options.to_dict())
        return iter(SCRIPT), info

    def detect_language(self, audio: np.ndarray) -> list[tuple[str, float]]:
        return [("en", 1.0)]


class TurnsDiarizer:
    """Returns :data:`TURNS` (none for a recording of silence), recording what it was asked."""

    identifier = "turns (sha256:0123456789ab)"

    def __init__(self, threshold: float = 0.5) -> None:
        self.threshold = threshold
        self.asked: list[int | None] = []

    def settings(self) -> dict[str, object]:
        return {"threshold": self.threshold}

    def diarize(self, audio: np.ndarray, speakers: int | None = None) -> list[SpeakerTurn]:
        self.asked.append(speakers)
        if not np.any(audio):
            return []
        return list(TURNS)


class QuestionRoles:
    """The speaker who asks the most questions is the clinician, the others patients."""

    identifier = "questions (sha256:abcdef012345)"

    def __init__(self) -> None:
        self.seen: list[list[tuple[str, str]]] = []

    def speakers(self, turns: Sequence[tuple[str, str]]) -> dict[str, RoleGuess]:
        self.seen.append(list(turns))
        asks: dict[str, int] = {}
        for speaker, text in turns:
            asks[speaker] = asks.get(speaker, 0) + text.count("?")
        top = max(asks, key=lambda s: asks[s])
        return {s: RoleGuess("clinician" if s == top else "patient", 0.75) for s in asks}


def _doc(segments: tuple[Segment, ...] = SCRIPT) -> TranscriptDocument:
    info = TranscriptionInfo("en", 1.0, 10.0, 9.0, "transcribe", "script")
    return TranscriptDocument(SourceFile("a.wav", 1, "0" * 64), info, segments, "f" * 16)


def _stage(count: Any = "auto", **kwargs: Any) -> tuple[SpeakerStage, TurnsDiarizer,
                                                         QuestionRoles]:
    diarizer, roles = TurnsDiarizer(**kwargs), QuestionRoles()
    return SpeakerStage(diarizer, roles, count), diarizer, roles


def _diarized() -> TranscriptDocument:
    stage, _, _ = _stage()
    return stage.annotate(_doc(), np.ones(SAMPLE_RATE * 10, dtype=np.float32))


def test_segments_are_split_by_speaker_and_numbered_in_order() -> None:
    stage, diarizer, roles = _stage()
    doc = stage.annotate(_doc(), np.ones(SAMPLE_RATE * 10, dtype=np.float32))
    assert [(s.id, s.speaker, s.text.strip()) for s in doc.segments] == [
        (0, "S1", "Do you have any chest pain?"), (1, "S2", "No."), (2, "S1", "Any fever?"),
        (3, "S2", "Yes, since Monday."), (4, "S2", "It started at night.")]
    assert diarizer.asked == [None]
    # The role classifier reads whole turns: a speaker's consecutive segments joined.
    assert roles.seen == [[("S1", "Do you have any chest pain?"), ("S2", "No."),
                           ("S1", "Any fever?"),
                           ("S2", "Yes, since Monday. It started at night.")]]
    assert doc.speakers is not None
    # The cough's speaker said no word: not in the table.
    assert doc.speakers.speakers == (SpeakerInfo("S1", "clinician", 0.75, 3.4),
                                     SpeakerInfo("S2", "patient", 0.75, 4.7))
    assert (doc.speakers.requested, doc.speakers.fingerprint) == ("auto", stage.fingerprint)


def test_the_fingerprint_covers_weights_settings_and_count() -> None:
    prints = {_stage()[0].fingerprint, _stage(2)[0].fingerprint,
              _stage(threshold=0.6)[0].fingerprint}
    assert len(prints) == 3
    assert _stage()[0].fingerprint == _stage()[0].fingerprint


def test_silence_has_no_speakers() -> None:
    stage, _, roles = _stage()
    doc = stage.annotate(_doc(()), np.zeros(SAMPLE_RATE, dtype=np.float32))
    assert doc.segments == () and doc.speakers is not None and doc.speakers.speakers == ()
    assert roles.seen == [] and render_txt(doc) == ""


def test_json_carries_speaker_and_role_per_segment_and_reads_back() -> None:
    doc = _diarized()
    assert doc.speakers is not None
    data = json.loads(doc.to_json())
    assert data["diarization"] == {
        "model": f"{TurnsDiarizer.identifier}; roles {QuestionRoles.identifier}",
        "fingerprint": doc.speakers.fingerprint, "speakers": "auto",
        "origins": [0, 0, 1, 1, 2]}  # the recognised segment each segment was cut from
    assert data["speakers"] == [
        {"id": "S1", "role": "clinician", "confidence": 0.75, "talk_time": 3.4},
        {"id": "S2", "role": "patient", "confidence": 0.75, "talk_time": 4.7}]
    assert [(s["speaker"], s["role"]) for s in data["segments"]] == [
        ("S1", "clinician"), ("S2", "patient"), ("S1", "clinician"), ("S2", "patient"),
        ("S2", "patient")]
    assert TranscriptDocument.from_json(doc.to_json()) == doc
    plain = json.loads(_doc().to_json())
    assert "speakers" not in plain and "diarization" not in plain
    assert all("role" not in s for s in plain["segments"])


def test_a_segment_speaker_must_be_in_the_table() -> None:
    doc = _diarized()
    assert doc.speakers is not None
    first = doc.speakers.speakers[:1]
    with pytest.raises(ValueError, match=r"\['S2'\] are not in the speakers table"):
        TranscriptDocument(doc.source, doc.info, doc.segments, doc.fingerprint,
                           speakers=SpeakerAnnotations("m", "f", 2, first))


def test_txt_has_one_line_per_turn() -> None:
    assert render_txt(_diarized()).splitlines() == [
        "Clinician: Do you have any chest pain?", "Patient: No.", "Clinician: Any fever?",
        "Patient: Yes, since Monday. It started at night."]


def test_srt_prefixes_each_cue_with_its_speaker() -> None:
    cues = list(srt.parse(render_srt(_diarized())))
    assert [c.content for c in cues] == [
        "Clinician: Do you have any chest pain?", "Patient: No.", "Clinician: Any fever?",
        "Patient: Yes, since Monday.", "Patient: It started at night."]
    assert cues[1].start.total_seconds() == 2.6


def test_vtt_voice_spans_parse_back() -> None:
    captions = webvtt.from_string(render_vtt(_diarized())).captions
    assert [(c.voice, c.text) for c in captions] == [
        ("Clinician", "Do you have any chest pain?"), ("Patient", "No."),
        ("Clinician", "Any fever?"), ("Patient", "Yes, since Monday."),
        ("Patient", "It started at night.")]


def test_labels_name_the_id_where_the_role_is_unknown_or_shared() -> None:
    doc = _diarized()
    table = (SpeakerInfo("S1", "clinician", 0.9, 1.0), SpeakerInfo("S2", "other", 0.6, 1.0),
             SpeakerInfo("S3", "other", 0.5, 1.0), SpeakerInfo("S4", None, None, 0.2))
    relabelled = TranscriptDocument(doc.source, doc.info, doc.segments, doc.fingerprint,
                                    speakers=SpeakerAnnotations("m", "f", "auto", table))
    assert speaker_labels(relabelled) == {"S1": "Clinician", "S2": "Other (S2)",
                                          "S3": "Other (S3)", "S4": "S4"}
    assert render_txt(relabelled).splitlines()[1] == "Other (S2): No."


def test_outputs_without_speakers_are_unchanged() -> None:
    doc = _doc()
    assert render_txt(doc).splitlines() == [s.text for s in SCRIPT]
    assert [c.content for c in srt.parse(render_srt(doc))] == [s.text for s in SCRIPT]
    assert all(c.voice is None for c in webvtt.from_string(render_vtt(doc)).captions)


def test_conversation_turns_join_a_speakers_consecutive_segments() -> None:
    assert conversation_turns(_diarized().segments)[-1] == (
        "S2", "Yes, since Monday. It started at night.")


@pytest.mark.parametrize(("value", "count"), [("auto", "auto"), ("AUTO", "auto"), ("2", 2)])
def test_speaker_count_option(value: str, count: Any) -> None:
    assert parse_speaker_count(value) == count


@pytest.mark.parametrize("value", ["0", "-1", "two", ""])
def test_bad_speaker_counts_are_refused(value: str) -> None:
    with pytest.raises(ValueError, match="--speakers must be 'auto' or a number"):
        parse_speaker_count(value)


# --------------------------------------------------------------------- the batch job


@dataclass
class Batch:
    """A folder with a recording of speech and one of silence, and the stand-in models."""

    inputs: list[Any]
    out: Path
    backend: ScriptBackend

    def run(self, speakers: SpeakerStage | None = None,
            annotator: EntityAnnotator | None = None) -> dict[str, str]:
        job = BatchJob(out_dir=self.out, options=TranscribeOptions(language="en"))
        summary = BatchTranscriber(self.backend, job, annotator=annotator,
                                   speakers=speakers).run(self.inputs)
        return {o.input.path.name: o.error or o.status for o in summary.outcomes}

    def json(self, name: str = "visit") -> dict[str, Any]:
        return dict(json.loads((self.out / f"{name}.json").read_text(encoding="utf-8")))


@pytest.fixture
def batch(tmp_path: Path) -> Batch:
    folder = tmp_path / "in"
    folder.mkdir()
    noise = np.random.default_rng(0).normal(0, 0.05, SAMPLE_RATE * 10).astype(np.float32)
    sf.write(folder / "visit.wav", noise, SAMPLE_RATE)
    (folder / "corrupt.mp3").write_bytes(b"ID3" + bytes(range(256)) * 40)
    inputs, _ = discover_inputs([folder])
    return Batch(inputs, tmp_path / "out", ScriptBackend())


def _lexicon_annotator() -> EntityAnnotator:
    return EntityAnnotator(EntityRecognizer([LexiconRecognizer([builtin_lexicon("en")])]),
                           "built-in lexicon", "lexicon-v1")


def test_speakers_are_added_to_a_finished_batch_without_recognising_again(
        batch: Batch) -> None:
    corrupt = batch.inputs[0].path
    assert batch.run()["visit.wav"] == "done"
    plain = batch.json()
    assert "diarization" not in plain and batch.backend.calls == 1

    stage, diarizer, _ = _stage()
    outcomes = batch.run(stage)
    assert outcomes["visit.wav"] == "done" and batch.backend.calls == 1
    assert outcomes["corrupt.mp3"].startswith(f"cannot read audio from {corrupt}")
    diarized = batch.json()
    assert [s["speaker"] for s in diarized["segments"]] == ["S1", "S2", "S1", "S2", "S2"]
    assert (batch.out / "visit.txt").read_text().startswith(
        "Clinician: Do you have any chest pain?\nPatient: No.\n")

    assert batch.run(stage)["visit.wav"] == "skipped" and diarizer.asked == [None]

    # Entities on a diarized transcript: no new diarization, and the dialogue marks them.
    assert batch.run(stage, _lexicon_annotator())["visit.wav"] == "done"
    assert (batch.backend.calls, diarizer.asked) == (1, [None])
    tagged = batch.json()
    found = {e["text"]: e for s in tagged["segments"] for e in s["entities"]}
    assert found["chest pain"].get("asked") is True
    assert found["chest pain"].get("negated") is True
    assert found["chest pain"].get("negated_by") == 1  # the patient's "No." (segment 1)
    assert found["fever"].get("asked") is True and not found["fever"].get("negated")
    assert tagged["speakers"] == diarized["speakers"]


def test_other_speaker_settings_or_none_start_from_the_recognised_segments(
        batch: Batch) -> None:
    """The json keeps which recognised segment each piece came from: another diarization
    (or none) joins the pieces back as the recogniser cut them and goes on from there,
    without recognising the audio again."""
    stage, _, _ = _stage()
    batch.run(stage)
    first = batch.json()
    assert first["diarization"]["origins"] == [0, 0, 1, 1, 2]
    two, diarizer, _ = _stage(2)
    assert batch.run(two)["visit.wav"] == "done"
    assert (batch.backend.calls, diarizer.asked) == (1, [2])
    assert batch.json()["diarization"]["speakers"] == 2
    assert batch.json()["segments"] == first["segments"]
    assert batch.run()["visit.wav"] == "done" and batch.backend.calls == 1
    plain = batch.json()
    assert "diarization" not in plain and "speakers" not in plain
    assert [s["text"].strip() for s in plain["segments"]] == [s.text.strip() for s in SCRIPT]
    assert [(s["start"], s["end"], len(s["words"])) for s in plain["segments"]] == [
        (s.start, s.end, len(s.words)) for s in SCRIPT]
    assert (batch.out / "visit.txt").read_text().startswith(
        "Do you have any chest pain? No.")
    assert batch.run()["visit.wav"] == "skipped"


def test_a_transcript_split_before_origins_were_kept_is_recognised_again(
        batch: Batch) -> None:
    stage, _, _ = _stage()
    batch.run(stage)
    path = batch.out / "visit.json"
    old = json.loads(path.read_text(encoding="utf-8"))
    del old["diarization"]["origins"]
    path.write_text(json.dumps(old), encoding="utf-8")
    assert batch.run(_stage(2)[0])["visit.wav"] == "done" and batch.backend.calls == 2


def test_pieces_join_back_into_the_recognised_segments() -> None:
    doc = _diarized()
    assert doc.speakers is not None and doc.speakers.origins == (0, 0, 1, 1, 2)
    back = without_speakers(doc)
    assert back.speakers is None and back.entities is None
    assert [replace(s, text=s.text.strip()) for s in back.segments] == [
        replace(s, text=s.text.strip()) for s in SCRIPT]
    with pytest.raises(ValueError, match="origins"):
        replace(doc, speakers=replace(doc.speakers, origins=(0, 1, 1, 2)))
    with pytest.raises(ValueError, match="has speakers already"):
        _stage()[0].annotate(doc, np.ones(SAMPLE_RATE * 10, dtype=np.float32))


def test_a_diarizer_failure_fails_that_file_alone(batch: Batch, tmp_path: Path) -> None:
    class Failing(TurnsDiarizer):
        def diarize(self, audio: np.ndarray, speakers: int | None = None) -> list[SpeakerTurn]:
            raise RuntimeError("diarizer exploded")

    quiet = tmp_path / "in" / "quiet.wav"
    sf.write(quiet, np.full(SAMPLE_RATE, 0.01, dtype=np.float32), SAMPLE_RATE)
    batch.inputs, _ = discover_inputs([tmp_path / "in"])
    outcomes = batch.run(SpeakerStage(Failing(), QuestionRoles()))
    assert outcomes["visit.wav"].endswith("visit.wav: diarizer exploded")
    assert outcomes["quiet.wav"].endswith("quiet.wav: diarizer exploded")
    assert outcomes["corrupt.mp3"].startswith("cannot read audio")
    outcomes = batch.run(_stage()[0])
    assert (outcomes["visit.wav"], outcomes["quiet.wav"]) == ("done", "done")


def test_speakers_need_word_timestamps(batch: Batch) -> None:
    job = BatchJob(out_dir=batch.out, options=TranscribeOptions(word_timestamps=False))
    with pytest.raises(ValueError, match="speakers need word timestamps"):
        BatchTranscriber(batch.backend, job, speakers=_stage()[0])


def test_cli_refuses_a_bad_speaker_count_before_any_work(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["transcribe", str(tmp_path), "--speakers", "none"],
                                env={"COLUMNS": "300"})
    assert result.exit_code == 2
    assert "--speakers must be 'auto' or a number of speakers (1 or more), not 'none'" \
        in result.output


def test_print_shows_one_line_per_turn_with_speakers(batch: Batch) -> None:
    job = BatchJob(out_dir=batch.out, options=TranscribeOptions(language="en"))
    plain = BatchTranscriber(batch.backend, job).run(batch.inputs)
    diarized = BatchTranscriber(batch.backend, job, speakers=_stage()[0]).run(batch.inputs)
    (before,) = [o.text for o in plain.outcomes if o.input.path.name == "visit.wav"]
    (after,) = [o.text for o in diarized.outcomes if o.input.path.name == "visit.wav"]
    assert before.split() == " ".join(s.text for s in SCRIPT).split()  # no labels
    assert after.splitlines() == [
        "Clinician: Do you have any chest pain?", "Patient: No.", "Clinician: Any fever?",
        "Patient: Yes, since Monday. It started at night."]


def test_marked_entities_are_fingerprinted_with_the_rules_and_the_speakers(
        batch: Batch, monkeypatch: pytest.MonkeyPatch) -> None:
    stage, diarizer, _ = _stage()
    assert batch.run(stage, _lexicon_annotator())["visit.wav"] == "done"
    marked = batch.json()["ner"]["fingerprint"]
    assert marked == marked_fingerprint("lexicon-v1", stage.fingerprint) != "lexicon-v1"
    assert batch.run(stage, _lexicon_annotator())["visit.wav"] == "skipped"
    # New dialogue rules mark the entities again, without recognising or diarizing again.
    monkeypatch.setattr("streaming.speakers.RULES_VERSION", "dialogue-rules/test")
    assert batch.run(stage, _lexicon_annotator())["visit.wav"] == "done"
    assert (batch.backend.calls, diarizer.asked) == (1, [None])
    assert batch.json()["ner"]["fingerprint"] not in (marked, "lexicon-v1")
    # Without speakers the entities are the recognizer's alone.
    assert batch.run(None, _lexicon_annotator())["visit.wav"] == "done"
    assert batch.json()["ner"]["fingerprint"] == "lexicon-v1"
