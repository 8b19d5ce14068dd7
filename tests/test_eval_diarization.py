"""`medstream eval diarization`: DER/JER with the stated collar, cpWER, role-attributed WER,
role accuracy on small hand-made conversations with known answers, and the readers on the
real role-labelled references."""

from __future__ import annotations

import itertools
import json
import random
import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from eval.conversations import (
    Conversation,
    ConversationSet,
    TextTurn,
    TimedTurn,
    read_conversations,
    read_role_transcript,
    read_rttm,
    read_transcript_json,
    read_turns_jsonl,
    write_rttm,
)
from eval.diarization import (
    AttributedWER,
    DiarizationError,
    RoleAccuracy,
    edit_counts,
    speaker_mapping,
    speaker_roles,
    time_role_agreement,
)
from eval.diarization_run import Pair, diarization_section, pair_conversations
from speech.errors import DataFileError
from streaming.cli.app import app
from tests.conftest import SPEECH

OSCE = SPEECH / "fareez_osce_en"
SYNTH = SPEECH / "synth_dialogue_en"


def _needs(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path} is absent: the shared data is not on this machine")
    return path


def _timed(*turns: tuple[float, float, str, str | None]) -> Conversation:
    return Conversation("rec", timeline=tuple(
        TimedTurn(start, end, speaker, role)  # type: ignore[arg-type]
        for start, end, speaker, role in turns))


def _said(*turns: tuple[str, str | None, str]) -> Conversation:
    return Conversation("rec", transcript=tuple(
        TextTurn(speaker, text, role)  # type: ignore[arg-type]
        for speaker, role, text in turns))


def _score(metric: Any, reference: Conversation, hypothesis: Conversation) -> float:
    return float(metric.corpus_score([hypothesis], [reference]).score)


# --------------------------------------------------------------------------- DER and JER

REFERENCE = _timed((0, 10, "A", "clinician"), (10, 20, "B", "patient"))


def test_a_perfect_timeline_with_other_speaker_names_has_no_error() -> None:
    hypothesis = _timed((0, 10, "S2", None), (10, 20, "S1", None))
    for metric in (DiarizationError(0.0), DiarizationError(0.25),
                   DiarizationError(0.25, jaccard=True)):
        assert _score(metric, REFERENCE, hypothesis) == 0.0


def test_the_collar_is_per_side_of_each_reference_boundary() -> None:
    # The hypothesis changes speaker 2 s late: 2 s of confusion in 20 s.
    hypothesis = _timed((0, 12, "S1", None), (12, 20, "S2", None))
    assert _score(DiarizationError(0.0), REFERENCE, hypothesis) == pytest.approx(10.0)
    # ±0.25 s around the boundaries at 0, 10 and 20 s is not scored: 19 s remain, of which
    # 1.75 s (10.25-12) are confused.
    score = DiarizationError(0.25).corpus_score([hypothesis], [REFERENCE])
    assert score.score == pytest.approx(100 * 1.75 / 19)
    assert score.details["total"] == pytest.approx(19.0)
    assert "collar:±0.25s" in score.signature


def test_der_counts_missed_speech_and_false_alarm() -> None:
    hypothesis = _timed((0, 10, "S1", None), (10, 15, "S2", None), (20, 25, "S2", None))
    score = DiarizationError(0.0).corpus_score([hypothesis], [REFERENCE])
    assert score.details["missed_detection"] == pytest.approx(5.0)
    assert score.details["false_alarm"] == pytest.approx(5.0)
    # The scored region is the union of both extents: 25 s of which 20 are reference speech.
    assert score.score == pytest.approx(100 * 10 / 20)


def test_a_speaker_overlapping_themself_is_one_voice() -> None:
    # Transcript segments of one speaker that overlap by a second are not two speakers.
    hypothesis = _timed((0, 6, "S1", "clinician"), (5, 10, "S1", "clinician"),
                        (10, 20, "S2", "patient"))
    assert _score(DiarizationError(0.0), REFERENCE, hypothesis) == 0.0
    assert _score(RoleAccuracy("time"), REFERENCE, hypothesis) == 100.0
    assert RoleAccuracy("time").corpus_score([hypothesis], [REFERENCE]).details["seconds"] == 20


def test_jer_weights_every_reference_speaker_equally() -> None:
    # Speaker B is never found: its JER is 1, A's is 0; the mean is 0.5.
    hypothesis = _timed((0, 10, "S1", None))
    assert _score(DiarizationError(0.0, jaccard=True), REFERENCE, hypothesis) == \
        pytest.approx(50.0)


# --------------------------------------------------------------------------- WERs

REF_TEXT = _said(("D", "clinician", "how are you feeling today"),
                 ("P", "patient", "not great doctor"))


def test_swapped_roles_keep_cpwer_at_wer_but_role_wer_is_high() -> None:
    hypothesis = _said(("S1", "patient", "How are you feeling today?"),
                       ("S2", "clinician", "Not great, doctor."))
    assert _score(AttributedWER("wer"), REF_TEXT, hypothesis) == 0.0
    assert _score(AttributedWER("cpwer"), REF_TEXT, hypothesis) == 0.0
    # Clinician stream: 5 reference words against 3 → 3 substitutions, 2 deletions; patient
    # stream: 3 against 5 → 3 substitutions, 2 insertions. 10 errors for 8 words.
    assert _score(AttributedWER("role"), REF_TEXT, hypothesis) == pytest.approx(125.0)
    assert _score(RoleAccuracy("speaker"), REF_TEXT, hypothesis) == 0.0
    assert _score(RoleAccuracy("word"), REF_TEXT, hypothesis) == 0.0


def test_a_word_given_to_the_wrong_speaker_costs_cpwer_but_not_wer() -> None:
    hypothesis = _said(("S1", "clinician", "how are you feeling"),
                       ("S2", "patient", "today not great doctor"))
    assert _score(AttributedWER("wer"), REF_TEXT, hypothesis) == 0.0
    # "today" is a deletion for the clinician and an insertion for the patient.
    score = AttributedWER("cpwer").corpus_score([hypothesis], [REF_TEXT])
    assert score.score == pytest.approx(100 * 2 / 8)
    assert (score.details["deletions"], score.details["insertions"]) == (1, 1)
    assert _score(AttributedWER("role"), REF_TEXT, hypothesis) == pytest.approx(25.0)
    assert _score(RoleAccuracy("word"), REF_TEXT, hypothesis) == pytest.approx(100 * 7 / 8)
    assert _score(RoleAccuracy("speaker"), REF_TEXT, hypothesis) == 100.0


def test_words_without_a_role_are_all_errors_in_the_role_wer() -> None:
    hypothesis = _said(("S1", "clinician", "how are you feeling today"),
                       ("S2", None, "not great doctor"))
    assert _score(AttributedWER("cpwer"), REF_TEXT, hypothesis) == 0.0
    # 3 patient words deleted, 3 role-less words inserted.
    assert _score(AttributedWER("role"), REF_TEXT, hypothesis) == pytest.approx(75.0)


def test_cpwer_pairs_the_extra_speaker_with_nobody() -> None:
    hypothesis = _said(("S1", "clinician", "how are you feeling today"),
                       ("S2", "patient", "not great"), ("S3", "other", "doctor"))
    score = AttributedWER("cpwer").corpus_score([hypothesis], [REF_TEXT])
    assert score.score == pytest.approx(100 * 2 / 8)  # "doctor" deleted and inserted
    found = {s.speaker: s for s in speaker_roles(REF_TEXT, hypothesis)}
    assert found["S3"].maps_to is None and not found["S3"].right
    score = RoleAccuracy("speaker").corpus_score([hypothesis], [REF_TEXT])
    assert score.score == 100.0  # S3 is left out of the rate, counted apart
    assert (score.details["speakers"], score.details["unmapped_speakers"]) == (2, 1)


def test_wers_pool_edit_counts_over_recordings() -> None:
    other_ref = _said(("D", "clinician", "any chest pain"))
    other_hyp = _said(("S1", "clinician", "any chest pains"))
    perfect = _said(("S1", "clinician", "how are you feeling today"),
                    ("S2", "patient", "not great doctor"))
    score = AttributedWER("cpwer").corpus_score([perfect, other_hyp], [REF_TEXT, other_ref])
    assert score.score == pytest.approx(100 * 1 / 11)
    assert score.details["reference_length"] == 11


# --------------------------------------------------------------------------- roles on time


def test_time_weighted_role_accuracy() -> None:
    hypothesis = _timed((0, 12, "S1", "clinician"), (12, 20, "S2", "patient"))
    agree, total = time_role_agreement(REFERENCE.timeline or (), hypothesis.timeline or ())
    assert (agree, total) == pytest.approx((18.0, 20.0))
    assert _score(RoleAccuracy("time"), REFERENCE, hypothesis) == pytest.approx(90.0)


def test_the_speaker_mapping_follows_the_timeline_when_there_is_one() -> None:
    hypothesis = _timed((0, 9, "S2", "patient"), (9, 20, "S1", "clinician"))
    assert speaker_mapping(REFERENCE, hypothesis) == {"S2": "A", "S1": "B"}
    assert _score(RoleAccuracy("speaker"), REFERENCE, hypothesis) == 0.0


# --------------------------------------------------------------------------- readers


def test_rttm_is_read_per_file_and_written_back(tmp_path: Path) -> None:
    path = tmp_path / "two.rttm"
    path.write_text(";; comment\n"
                    "SPEAKER a 1 1.5 2.0 <NA> <NA> doctor <NA> <NA>\n"
                    "SPEAKER a 1 0.0 1.0 <NA> <NA> patient <NA> <NA>\n"
                    "SPKR-INFO a 1 <NA> <NA> <NA> unknown doctor <NA> <NA>\n"
                    "SPEAKER b 1 0.0 1.0 <NA> <NA> spk7 <NA> <NA>\n")
    found = read_rttm(path)
    assert found["a"] == (TimedTurn(0.0, 1.0, "patient", "patient"),
                          TimedTurn(1.5, 3.5, "doctor", "clinician"))
    assert found["b"] == (TimedTurn(0.0, 1.0, "spk7", None),)
    write_rttm(Conversation("a", timeline=found["a"]), tmp_path / "back.rttm")
    assert read_rttm(tmp_path / "back.rttm")["a"] == found["a"]


@pytest.mark.parametrize(("line", "reason"), [
    ("SPEAKER a 1 x 2.0 <NA> <NA> doctor", "onset 'x' is not a number"),
    ("SPEAKER a 1 1.0 -2 <NA> <NA> doctor", "duration must be a finite number >= 0"),
    ("SPEAKER a 1 1.0", "4 fields"),
])
def test_a_bad_rttm_line_is_named(tmp_path: Path, line: str, reason: str) -> None:
    path = tmp_path / "bad.rttm"
    path.write_text("SPEAKER a 1 0 1 <NA> <NA> d <NA> <NA>\n" + line + "\n")
    with pytest.raises(DataFileError, match=re.escape("bad.rttm:2: ") + ".*" + reason):
        read_rttm(path)


@pytest.mark.parametrize(("name", "clinician", "patient"), [
    ("CAR0001", 61, 61), ("CAR0002", 42, 41), ("GAS0001", 38, 37), ("MSK0001", 48, 47)])
def test_the_osce_transcripts_give_their_turns_and_the_manifest_text(
        name: str, clinician: int, patient: int) -> None:
    turns = read_role_transcript(_needs(OSCE / "transcripts" / f"{name}.txt"))
    roles = [t.role for t in turns]
    assert (roles.count("clinician"), roles.count("patient")) == (clinician, patient)
    assert {t.speaker for t in turns} == {"D", "P"}
    manifest = {Path(row["audio_filepath"]).stem: row["text"] for row in map(
        json.loads, (OSCE / "manifest.jsonl").read_text().splitlines())}
    # The manifest's text is the same turns joined by spaces (its whitespace collapsed).
    assert " ".join(" ".join(t.text for t in turns).split()) == " ".join(manifest[name].split())


def test_labelled_text_continues_turns_and_refuses_unlabelled_openings(tmp_path: Path) -> None:
    path = tmp_path / "t.txt"
    path.write_text("D: Any pain?\n\nP: Only when I\nwalk.\nD; OK.\nClinician: Next.\n")
    turns = read_role_transcript(path)
    assert [(t.speaker, t.role, t.text) for t in turns] == [
        ("D", "clinician", "Any pain?"), ("P", "patient", "Only when I walk."),
        ("D", "clinician", "OK."), ("CLINICIAN", "clinician", "Next.")]
    path.write_text("Hello there\nD: Any pain?\n")
    with pytest.raises(DataFileError, match=r"t\.txt:1: text before the first speaker label"):
        read_role_transcript(path)


def test_the_synthetic_dialogues_come_from_their_manifest_with_times_and_text() -> None:
    found = read_conversations([_needs(SYNTH)])
    assert found.errors == {}
    assert sorted(found.conversations) == ["mts_valid_1", "mts_valid_61", "mts_valid_71",
                                           "mts_valid_75"]
    dialogue = found.conversations["mts_valid_1"]
    assert dialogue.timeline is not None and dialogue.transcript is not None
    assert len(dialogue.timeline) == 14
    assert dialogue.timeline[0].role == "clinician" and dialogue.timeline[1].role == "patient"
    rttm = read_rttm(SYNTH / "rttm" / "mts_valid_1.rttm")["mts_valid_1"]
    assert [(t.start, t.speaker) for t in rttm] == [
        (t.start, t.speaker.lower()) for t in dialogue.timeline]
    assert read_turns_jsonl(SYNTH / "turns" / "mts_valid_1.jsonl") == \
        Conversation("mts_valid_1", dialogue.timeline, dialogue.transcript,
                     (str(SYNTH / "turns" / "mts_valid_1.jsonl"),))


def _transcript(path: Path, segments: list[dict[str, Any]], audio: str = "x/visit.wav") -> Path:
    path.write_text(json.dumps({"schema": "medstream.transcript/1", "complete": True,
                                "source": {"path": audio, "size": 1, "sha256": "0"},
                                "segments": segments}))
    return path


def test_a_json_transcript_gives_speakers_and_roles(tmp_path: Path) -> None:
    path = _transcript(tmp_path / "out.json", [
        {"id": 0, "start": 0.0, "end": 1.0, "text": "Any pain?", "speaker": "S1",
         "role": "clinician"},
        {"id": 1, "start": 1.2, "end": 2.0, "text": "No.", "speaker": "S2", "role": "patient"}])
    conversation = read_transcript_json(path)
    assert conversation.id == "visit"
    assert conversation.timeline == (TimedTurn(0.0, 1.0, "S1", "clinician"),
                                     TimedTurn(1.2, 2.0, "S2", "patient"))
    assert [t.text for t in conversation.transcript or ()] == ["Any pain?", "No."]


def test_a_json_transcript_without_speakers_is_refused(tmp_path: Path) -> None:
    path = _transcript(tmp_path / "plain.json", [
        {"id": 0, "start": 0.0, "end": 1.0, "text": "Any pain?", "speaker": None}])
    with pytest.raises(DataFileError, match="not diarized"):
        read_transcript_json(path)


def test_unreadable_files_are_recorded_and_the_rest_read(tmp_path: Path) -> None:
    good = tmp_path / "good.rttm"
    good.write_text("SPEAKER good 1 0 1 <NA> <NA> doctor <NA> <NA>\n")
    bad = tmp_path / "bad.rttm"
    bad.write_text("SPEAKER bad 1 zero 1 <NA> <NA> doctor\n")
    found = read_conversations([good, bad, tmp_path / "missing.rttm"])
    assert list(found.conversations) == ["good"]
    assert set(found.errors) == {str(bad), str(tmp_path / "missing.rttm")}
    assert "not a number" in found.errors[str(bad)]


def test_a_view_given_twice_leaves_that_recording_out() -> None:
    found = ConversationSet()
    found.add(_timed((0, 1, "A", None)))
    found.add(_said(("D", "clinician", "hello")))
    assert found.conversations["rec"].timeline is not None
    assert found.conversations["rec"].transcript is not None
    found.add(_timed((0, 2, "A", None)))
    assert "rec" not in found.conversations
    assert "two files give the timeline of rec" in found.errors["rec"]


# --------------------------------------------------------------------------- report and CLI


def test_metrics_that_need_times_are_skipped_for_text_only_references() -> None:
    references, hypotheses = ConversationSet(), ConversationSet()
    references.add(REF_TEXT)
    hypotheses.add(Conversation("rec", timeline=(TimedTurn(0, 1, "S1", "patient"),),
                                transcript=(TextTurn("S1", "how are you feeling today",
                                                     "patient"),
                                            TextTurn("S2", "not great doctor", "clinician"))))
    pairs, problems = pair_conversations(references, hypotheses)
    section = diarization_section(pairs, problems)
    metrics = {row.score.metric for row in section.rows}
    assert {"WER", "cpWER", "role-WER", "role-acc/speaker", "role-acc/word"} <= metrics
    assert "needs times on both sides" in section.skipped["DER ±0.25s"]
    assert section.items[0]["roles_right"] is False


def test_roles_are_not_right_when_a_reference_speaker_has_no_hypothesis_speaker() -> None:
    hypothesis = Conversation("rec", (TimedTurn(0, 20, "S1", "clinician"),))
    section = diarization_section([Pair("rec", REFERENCE, hypothesis)])
    item = section.items[0]
    assert item["speakers"]["S1"]["right"] is True
    assert item["reference_speakers_missed"] == ["B"]
    assert item["roles_right"] is False
    assert any("B has no hypothesis speaker" in note for note in section.notes)


def test_the_cli_scores_what_it_can_and_fails_for_the_rest(tmp_path: Path) -> None:
    references = tmp_path / "ref"
    references.mkdir()
    (references / "visit.txt").write_text("D: How are you feeling today?\n\n"
                                          "P: Not great, doctor.\n")
    (references / "other.txt").write_text("D: Any chest pain?\n\nP: No.\n")
    hypotheses = tmp_path / "hyp"
    hypotheses.mkdir()
    _transcript(hypotheses / "visit.json", [
        {"id": 0, "start": 0.0, "end": 1.0, "text": "How are you feeling", "speaker": "S1",
         "role": "clinician"},
        {"id": 1, "start": 1.0, "end": 2.0, "text": "today? Not great, doctor.",
         "speaker": "S2", "role": "patient"}], audio="audio/visit.mp3")
    (hypotheses / "broken.json").write_text("{")
    (hypotheses / "notes.json").write_text('{"something": "else"}')
    result = CliRunner().invoke(app, ["eval", "diarization", "--hyp", str(hypotheses),
                                      "--ref", str(references), "--out", str(tmp_path / "r")],
                                env={"COLUMNS": "300"})
    assert result.exit_code == 1, result.output
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    section = report["sections"][0]
    scores = {(row["subset"], row["score"]["metric"]): row["score"]["score"]
              for row in section["rows"]}
    assert scores[("all", "WER")] == 0.0
    assert scores[("visit", "cpWER")] == pytest.approx(25.0)
    assert "no hypothesis for recording other" in section["skipped"]["other"]
    assert "not valid JSON" in section["skipped"][str(hypotheses / "broken.json")]
    assert not any("notes.json" in key for key in section["skipped"])


def test_the_cli_stops_when_nothing_can_be_scored(tmp_path: Path) -> None:
    (tmp_path / "visit.txt").write_text("D: Hello.\n")
    result = CliRunner().invoke(app, ["eval", "diarization", "--hyp", str(tmp_path / "none"),
                                      "--ref", str(tmp_path / "visit.txt"),
                                      "--out", str(tmp_path / "r")], env={"COLUMNS": "300"})
    assert result.exit_code == 2
    assert "no recording could be scored" in result.output


def test_unspaced_languages_get_the_timeline_metrics_and_a_reason_for_the_rest() -> None:
    reference = Conversation("rec", REFERENCE.timeline, (TextTurn("A", "你好", "clinician"),))
    hypothesis = Conversation("rec", (TimedTurn(0, 20, "S1", "clinician"),),
                              (TextTurn("S1", "你好", "clinician"),))
    section = diarization_section([Pair("rec", reference, hypothesis)], language="zh")
    metrics = {row.score.metric for row in section.rows}
    assert {"DER ±0.25s", "JER ±0.25s", "role-acc/speaker", "role-acc/time"} <= metrics
    assert "written without spaces" in section.skipped["cpWER"]
    assert not any(key.startswith("cpWER [") for key in section.skipped)


def test_cpwer_is_the_best_speaker_pairing_and_at_most_the_role_wer() -> None:
    # One role per speaker on both sides: the role pairing is one of the permutations cpWER
    # minimises over.
    rng = random.Random(5)
    vocabulary = ["pain", "chest", "left", "arm", "since", "monday", "no", "fever", "cough"]
    for _ in range(20):
        reference = _said(*((f"R{i}", role,
                             " ".join(rng.choices(vocabulary, k=rng.randint(1, 6))))
                            for i, role in enumerate(("clinician", "patient", "other"))))
        shuffled = [(f"S{rng.randint(1, 3)}",
                     " ".join(rng.choices(vocabulary, k=rng.randint(0, 5)))) for _ in range(4)]
        roles = dict(zip(("S1", "S2", "S3"), rng.sample(["clinician", "patient", "other"], 3),
                         strict=True))
        hypothesis = _said(*((speaker, roles[speaker], text) for speaker, text in shuffled))
        words = {side: {} for side in ("ref", "hyp")}  # type: dict[str, dict[str, list[str]]]
        for side, conversation in (("ref", reference), ("hyp", hypothesis)):
            for turn in conversation.transcript or ():
                words[side].setdefault(turn.speaker, []).extend(turn.text.split())
        best = min(sum(edit_counts(words["ref"].get(r, []), words["hyp"].get(h, [])).errors
                       for r, h in zip(["R0", "R1", "R2"], order, strict=True))
                   for order in itertools.permutations(["S1", "S2", "S3"]))
        cpwer = AttributedWER("cpwer").corpus_score([hypothesis], [reference])
        length = cpwer.details["reference_length"]
        assert cpwer.score == pytest.approx(100 * best / length)
        assert cpwer.score <= _score(AttributedWER("role"), reference, hypothesis) + 1e-9
