"""Speaker roles (ner/roles.py): the shipped classifier, its per-speaker decisions, interpreter
mode, and the recipe that trains it (recipes/roles)."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from ner.role_features import normalise, spoken_style, turn_features
from ner.roles import RoleClassifier, RoleGuess, roles_from_languages
from recipes.roles.data import Dialogue, Turn, load_dialogues, read_osce, tag_role
from recipes.roles.evaluate import FRAGMENT, by_sentence, first_turns, with_fragments
from speech.errors import DataFileError, ModelIntegrityError, ModelNotFoundError
from speech.packaged import pinned_models, resolve_pinned
from tests.conftest import SHARED_DATA

OSCE = SHARED_DATA / "speech" / "fareez_osce_en" / "transcripts"
DIALOGUE = SHARED_DATA / "dialogue"


@pytest.fixture(scope="module")
def classifier() -> RoleClassifier:
    return RoleClassifier.load()


def test_the_shipped_model_is_pinned_and_an_altered_copy_is_refused(tmp_path: Path) -> None:
    pinned = pinned_models("roles")["roles-en"]
    verified = resolve_pinned(pinned)
    assert verified.sha256 == pinned.weights_sha256
    assert RoleClassifier.load().identifier == verified.identifier
    assert pinned.weights_sha256[:12] in verified.identifier
    copy = tmp_path / "model.json"
    shutil.copy(verified.weights[0], copy)
    copy.write_bytes(copy.read_bytes().replace(b'"bias":[', b'"bias":[ '))
    altered = replace(pinned, folder=tmp_path, weights=(copy,))
    with pytest.raises(ModelIntegrityError, match="sha256"):
        resolve_pinned(altered)


def test_an_unknown_name_or_a_foreign_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="roles-en"):
        RoleClassifier.load("no-such-roles-model")
    (tmp_path / "model.json").write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(ModelIntegrityError, match="not a speaker-role model"):
        RoleClassifier.load(str(tmp_path))
    shipped = json.loads(resolve_pinned(pinned_models("roles")["roles-en"]).weights[0]
                         .read_text(encoding="utf-8"))
    truncated = tmp_path / "truncated.json"
    truncated.write_text(json.dumps({**shipped, "weights": shipped["weights"][:-1]}))
    with pytest.raises(ModelIntegrityError, match="damaged"):
        RoleClassifier.load(str(truncated))


@pytest.mark.parametrize("form", ["written", "spoken"])
def test_every_osce_interview_gets_its_roles_right(classifier: RoleClassifier,
                                                   form: str) -> None:
    paths = sorted(OSCE.glob("*.txt"))
    if len(paths) != 4:
        pytest.skip(f"{OSCE}: the four OSCE transcripts are not on this machine")
    text = spoken_style if form == "spoken" else str
    for path in paths:
        dialogue = read_osce(path)
        guesses = classifier.speakers([(t.speaker, text(t.text)) for t in dialogue.turns])
        assert {s: g.role for s, g in guesses.items()} == {"D": "clinician", "P": "patient"}, \
            path.name
        assert min(g.confidence for g in guesses.values()) > 0.9, path.name


def test_two_speakers_get_one_clinician_and_one_patient_jointly(
        classifier: RoleClassifier) -> None:
    # Both speakers ask questions; on its own each of B's turns could be a clinician's.
    turns = [("S1", "What brings you in today?"),
             ("S2", "Can I ask you something first? Is it bad that my chest hurts?"),
             ("S1", "When did the chest pain start, and does it spread to your arm?"),
             ("S2", "Is it normal that it started last night after dinner?"),
             ("S1", "Take a deep breath for me. Any nausea or sweating?")]
    guesses = classifier.speakers(turns)
    assert [guesses["S1"].role, guesses["S2"].role] == ["clinician", "patient"]
    # The patient's confidence also weighs that they are not a relative speaking for them.
    assert guesses["S1"].confidence >= guesses["S2"].confidence > 0.5
    assert classifier.speakers(turns) == guesses, "scores kept between calls change nothing"
    assert not classifier.turn_log_probs(turns[0][1]).flags.writeable
    swapped = classifier.speakers([("S2" if s == "S1" else "S1", t) for s, t in turns])
    assert [swapped["S2"].role, swapped["S1"].role] == ["clinician", "patient"]
    assert list(swapped) == ["S2", "S1"], "speakers come in order of first appearance"


def test_a_third_speaker_who_says_little_is_other(classifier: RoleClassifier) -> None:
    turns = [("S1", "Hello, I'm doctor Patel. What seems to be the problem today?"),
             ("S2", "I've had a bad cough for about two weeks and I feel tired all the time."),
             ("S3", "Okay."),
             ("S1", "Have you had any fever or shortness of breath?"),
             ("S2", "A little fever at night, I think. No trouble breathing though.")]
    guesses = classifier.speakers(turns)
    assert {s: g.role for s, g in guesses.items()} == {
        "S1": "clinician", "S2": "patient", "S3": "other"}
    assert all(0.5 <= g.confidence <= 1.0 for g in guesses.values())


def test_no_turns_no_speakers_and_a_lone_speaker_gets_a_role(
        classifier: RoleClassifier) -> None:
    assert classifier.speakers([]) == {}
    alone = classifier.speakers([("S1", "I've been feeling dizzy since yesterday, and my "
                                        "head hurts when I stand up.")])
    assert alone["S1"].role == "patient"
    silent = classifier.speakers([("S1", ""), ("S2", "   ")])
    assert set(silent) == {"S1", "S2"}
    assert all(0.0 <= g.confidence <= 1.0 for g in silent.values())


def test_casing_and_tokenisation_do_not_change_what_the_model_sees() -> None:
    aci = "hi , martha . how are you ? i 'm doing okay , thanks ."
    cased = "Hi, Martha. How are you? I'm doing okay, thanks."
    assert normalise(aci) == normalise(cased) == "hi, martha. how are you? i'm doing okay, thanks."
    assert turn_features(aci) == turn_features(cased)
    assert spoken_style(cased) == "hi martha how are you i'm doing okay thanks"


def test_interpreter_mode_reads_roles_from_languages() -> None:
    roles = roles_from_languages({"S1": "en-GB", "S2": "pt", "S3": "de"}, "en", "pt_BR")
    assert roles == {"S1": RoleGuess("clinician", 1.0), "S2": RoleGuess("patient", 1.0),
                     "S3": RoleGuess("other", 1.0)}
    with pytest.raises(ValueError, match="cannot tell"):
        roles_from_languages({"S1": "en"}, "en-US", "en")
    with pytest.raises(ValueError, match="not a language"):
        roles_from_languages({"S1": ""}, "en", "pt")


def test_role_guesses_are_checked() -> None:
    with pytest.raises(ValueError, match="unknown role"):
        RoleGuess("nurse", 0.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="outside"):
        RoleGuess("patient", 1.5)


def test_second_doctors_are_clinicians_and_relatives_other() -> None:
    assert [tag_role(t) for t in ("Doctor", "[doctor]", "Doctor_2", "Docotr_2",
                                  "Guest_clinician", "Guest_clinican")] == ["clinician"] * 6
    assert [tag_role(t) for t in ("Patient", "[patient]")] == ["patient"] * 2
    assert [tag_role(t) for t in ("Guest_family", "[patient_guest]", "Sp 3")] == ["other"] * 3
    if not (DIALOGUE / "mts_dialog" / "valid.jsonl").is_file():
        pytest.skip("the shared dialogue data is not on this machine")
    dialogues = {d.id: d for d in load_dialogues(DIALOGUE, "mts_dialog", "valid")}
    assert len(dialogues) == 100
    assert all(turn.text.strip() for d in dialogues.values() for turn in d.turns)


@pytest.mark.slow
def test_the_tiny_recipe_trains_a_model_that_loads_and_reports(tmp_path: Path) -> None:
    from recipes.roles.train import main

    repo = Path(__file__).resolve().parents[1]
    assert main(["--config", str(repo / "recipes/roles/conf/tiny.yaml"),
                 "--output", str(tmp_path)]) == 0
    trained = RoleClassifier.load(str(tmp_path))
    assert trained.identifier.startswith(str((tmp_path / "model.json").resolve()))
    assert (tmp_path / "model.json").stat().st_size < 2_000_000
    report = json.loads((tmp_path / "report.json").read_text())
    for name in ("mts_dialog", "aci_bench", "osce"):
        for form in ("written", "spoken"):
            scores = report["results"][name][form]
            assert scores["speakers"] > 0
            assert 0.5 < scores["speaker_accuracy"] <= 1.0, (name, form)
    assert "| osce | spoken |" in (tmp_path / "report.md").read_text()


def test_osce_transcripts_read_with_their_quirks(tmp_path: Path) -> None:
    path = tmp_path / "interview.txt"
    path.write_text("D: What brings you in?\n\nP: My knee.\n\nIt hurts when I walk.\n\n"
                    "D; How long for?\n", encoding="utf-8")
    dialogue = read_osce(path)
    assert [(t.speaker, t.role, t.text) for t in dialogue.turns] == [
        ("D", "clinician", "What brings you in?"),
        ("P", "patient", "My knee. It hurts when I walk."),
        ("D", "clinician", "How long for?")]
    path.write_text("Hello there.\nD: Hi.\n", encoding="utf-8")
    with pytest.raises(DataFileError, match=":1: text before the first"):
        read_osce(path)


def test_the_recipe_cuts_prefixes_sentences_and_fragments_as_it_says() -> None:
    dialogue = Dialogue("d", "c", "c", (
        Turn("A", "clinician", "How are you? Any pain?"),
        Turn("B", "patient", "Okay."),
        Turn("A", "clinician", "Where does it hurt now, exactly?"),
        Turn("B", "patient", "My left knee hurts when I climb the stairs.")))
    assert [len(d.turns) for d in first_turns([dialogue], 2)] == [2]
    assert first_turns([dialogue], 4) == []
    (sentences,) = by_sentence([dialogue])
    assert [(t.speaker, t.text) for t in sentences.turns[:2]] == [("A", "How are you?"),
                                                                  ("A", "Any pain?")]
    (split,) = with_fragments([dialogue])
    assert split.speaker_roles() == {"A": "clinician", FRAGMENT: "other", "B": "patient"}
    assert [t.speaker for t in split.turns] == ["A", FRAGMENT, "A", "B"]
