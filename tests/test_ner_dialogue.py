"""Entities asked by the clinician and denied by the patient (ner.dialogue), on turns of the
MTS-Dialog validation dialogues (ids in the comments; CC BY 4.0) with hand-built entities."""

from __future__ import annotations

import pytest

from ner.dialogue import DialogueMarker, DialogueTurn, is_negative_answer, mark_dialogue
from ner.schema import EntityType
from ner.types import Entity

CONDITION = EntityType.MEDICAL_CONDITION


def entity(text: str, part: str, kind: EntityType = CONDITION, negated: bool = False,
           occurrence: int = 0) -> Entity:
    start = -1
    for _ in range(occurrence + 1):
        start = text.index(part, start + 1)
    return Entity(start, start + len(part), part, kind, 0.9, "model", negated=negated)


def turn(turn_id: int | str, role: str | None, text: str, *parts: str | Entity) -> DialogueTurn:
    found = tuple(part if isinstance(part, Entity) else entity(text, part) for part in parts)
    return DialogueTurn(turn_id, role, text, found)


def marks(entities: tuple[Entity, ...]) -> list[tuple[str, bool, bool, int | str | None]]:
    return [(e.text, e.asked, e.negated, e.negated_by) for e in entities]


def test_question_marks_asked_and_no_negates_with_the_answer_id() -> None:
    # mts_valid_69
    result = mark_dialogue([turn(4, "clinician", "Any fever, chills?", "fever", "chills"),
                            turn(5, "patient", "No.")])
    assert marks(result[0]) == [("fever", True, True, 5), ("chills", True, True, 5)]
    assert result[1] == ()


def test_no_but_i_have_keeps_the_patients_own_finding() -> None:
    # mts_valid_53
    question = "Any fever, cough, sore throat, or any cold like symptoms?"
    answer = ("No, but I have a sinus problem and I suffer from chronic left sided headache.")
    result = mark_dialogue([turn("q", "clinician", question, "fever", "cough", "sore throat"),
                            turn("a", "patient", answer, "sinus problem", "headache")])
    assert marks(result[0]) == [("fever", True, True, "a"), ("cough", True, True, "a"),
                                ("sore throat", True, True, "a")]
    assert marks(result[1]) == [("sinus problem", False, False, None),
                                ("headache", False, False, None)]


def test_an_entity_the_answer_names_is_not_denied_unless_the_answer_negates_it() -> None:
    # mts_valid_61, then mts_valid_48
    question = "Wow, that's quite a lot. Do you have any history of melanoma, or skin cancer?"
    answer = "No, just the eczema."
    denied = mark_dialogue([turn(1, "clinician", question, "melanoma", "skin cancer"),
                            turn(2, "patient", answer, "eczema")])
    assert [e.negated_by for e in denied[0]] == [2, 2]
    question = "How about headaches or migraine?"
    named = mark_dialogue([turn(1, "clinician", question, "headaches", "migraine"),
                           turn(2, "patient", "No headaches.",
                                entity("No headaches.", "headaches", negated=True))])
    assert [e.negated_by for e in named[0]] == [2, 2]
    kept = mark_dialogue([turn(1, "clinician", question, "headaches", "migraine"),
                          turn(2, "patient", "No, just headaches.", "headaches")])
    assert marks(kept[0]) == [("headaches", True, False, None), ("migraine", True, True, 2)]


def test_an_answer_naming_an_asked_entity_in_other_words_keeps_it() -> None:
    # ACI-Bench D2N052 (train): "nauseated" names the nausea; the rest is denied
    question = "alright have you noticed any nausea vomiting fever chills"
    answer = "i have n't thrown up but i felt a little bit nauseated"
    result = mark_dialogue([turn(1, "clinician", question, "nausea", "vomiting", "fever",
                                 "chills"),
                            turn(2, "patient", answer, "nauseated")])
    assert [e.negated_by for e in result[0]] == [None, 2, 2, 2]


def test_statements_in_a_questioning_turn_are_not_asked() -> None:
    # mts_valid_33 (shortened): advice, then "Do you have any questions?"
    text = ("You need to continue the Cipro for an additional two days only. That will take care "
            "of the U T I. Do you have any questions?")
    cipro = entity(text, "Cipro", EntityType.MEDICATION)
    result = mark_dialogue([turn(1, "clinician", text, cipro, "U T I"),
                            turn(2, "patient", "No.")])
    assert marks(result[0]) == [("Cipro", False, False, None), ("U T I", False, False, None)]
    # MTS-Dialog train: the clause before the question is a statement
    text = "I see you have asthma, have you had any medication for this?"
    asthma = mark_dialogue([turn(1, "clinician", text, "asthma"),
                            turn(2, "patient", "No, I haven't had anything.")])
    assert marks(asthma[0]) == [("asthma", False, False, None)]


def test_only_the_last_run_of_yes_no_questions_is_answered() -> None:
    # mts_valid_37: the wh-question after "any discomfort" is what "No" answers
    text = ("It says that they put a stent in your ureter. Are you feeling any discomfort with "
            "it? Who was your doctor there?")
    stent = entity(text, "stent", EntityType.TEST_TREATMENT_PROCEDURE)
    result = mark_dialogue([turn(1, "clinician", text, stent, "discomfort"),
                            turn(2, "patient", "No, I don't remember his name.")])
    assert marks(result[0]) == [("stent", False, False, None),
                                ("discomfort", True, False, None)]


def test_wh_questions_and_known_entities_are_not_asked() -> None:
    # "How is your pain today?" presupposes the pain; mts_valid_89: "this pain" is known
    wh = mark_dialogue([turn(1, "clinician", "How is your pain today?", "pain"),
                        turn(2, "patient", "Not great.")])
    assert marks(wh[0]) == [("pain", False, False, None)]
    text = "Is this pain messing with your walking, or no?"
    known = mark_dialogue([turn(1, "clinician", text, "pain"),
                           turn(2, "patient", "No, I can walk and everything just fine.")])
    assert marks(known[0]) == [("pain", False, False, None)]


def test_a_sentence_is_cut_where_a_question_opens_after_a_comma() -> None:
    # MTS-Dialog valid (mts_valid_*) and train: a wh-question after a comma asks nothing,
    # yes/no questions after one do, and "when I touch …" is not a wh-question
    text = ("I see. And on the scale of one to ten, ten being severe, how will you rate your lower "
            "extremity pain?")
    rated = mark_dialogue([turn(1, "clinician", text, "extremity pain")])
    assert marks(rated[0]) == [("extremity pain", False, False, None)]
    text = ("Let me examine you. Tell me, did you have any fever or chills, any sweating or that "
            "sort of thing?")
    both = mark_dialogue([turn(1, "clinician", text, "fever", "chills", "sweating"),
                          turn(2, "patient", "Um no.")])
    assert [e.negated_by for e in both[0]] == [2, 2, 2]
    text = ("What about this, when I touch the knee do you feel any abnormal discomfort or pain "
            "over the rest of the knee?")
    knee = entity(text, "knee", EntityType.ANATOMY)
    touched = mark_dialogue([turn(1, "clinician", text, knee, "discomfort", "pain"),
                             turn(2, "patient", "No, nothing out of the ordinary there.")])
    assert marks(touched[0]) == [("knee", False, False, None), ("discomfort", True, True, 2),
                                 ("pain", True, True, 2)]


def test_anatomy_is_not_asked() -> None:
    # mts_valid_62
    text = "Any pain in the lower side of your back or in your legs?"
    back = entity(text, "back", EntityType.ANATOMY)
    legs = entity(text, "legs", EntityType.ANATOMY)
    result = mark_dialogue([turn(1, "clinician", text, "pain", back, legs),
                            turn(2, "patient", "Nope.")])
    assert marks(result[0]) == [("pain", True, True, 2), ("back", False, False, None),
                                ("legs", False, False, None)]


def test_yes_and_uncertain_answers_change_nothing() -> None:
    # mts_valid_43
    text = "Sounds good. Have you ever felt anxious or a fast heart beat after you've been stung?"
    for answer in ("Yes, I felt anxious.", "I'm not sure.", "No I don't know."):
        result = mark_dialogue([turn(1, "clinician", text, "anxious", "fast heart beat"),
                                turn(2, "patient", answer)])
        assert marks(result[0]) == [("anxious", True, False, None),
                                    ("fast heart beat", True, False, None)], answer


def test_unpunctuated_questions_from_asr() -> None:
    # ACI-Bench D2N081 and D2N078 (virtscribe, no punctuation)
    result = mark_dialogue([turn(1, "clinician", "okay and how about any nausea or vomiting",
                                 "nausea", "vomiting"),
                            turn(2, "patient", "no not as of today")])
    assert [e.negated_by for e in result[0]] == [2, 2]
    belly = mark_dialogue([turn(1, "clinician", "are you any belly pain", "belly pain"),
                           turn(2, "patient", "no")])
    assert marks(belly[0]) == [("belly pain", True, True, 2)]
    plan = "We'll get an x-ray of your knee, okay?"
    xray = entity(plan, "x-ray", EntityType.TEST_TREATMENT_PROCEDURE)
    agreed = mark_dialogue([turn(1, "clinician", plan, xray), turn(2, "patient", "No.")])
    assert marks(agreed[0]) == [("x-ray", False, False, None)]


def test_another_speaker_closes_the_open_questions() -> None:
    result = mark_dialogue([turn(1, "clinician", "Any nausea or vomiting?", "nausea", "vomiting"),
                            turn(2, "other", "She had some this morning."),
                            turn(3, "patient", "No.")])
    assert [e.negated for e in result[0]] == [False, False]
    unknown = mark_dialogue([turn(1, None, "Any nausea or vomiting?", "nausea", "vomiting"),
                             turn(2, None, "No.")])
    assert marks(unknown[0]) == [("nausea", False, False, None), ("vomiting", False, False, None)]


def test_online_marker_updates_earlier_finals_in_order() -> None:
    # mts_valid_69, the question cut into two live finals
    marker = DialogueMarker()
    first = marker.feed(turn(7, "clinician", "Okay. Any chest pain", "chest pain"))
    second = marker.feed(turn(8, "clinician", "or breathlessness?", "breathlessness"))
    assert marks(first.entities) == [("chest pain", True, False, None)]
    assert first.updates == second.updates == ()
    answer = marker.feed(turn(9, "patient", "No, I don't have chest issues."))
    assert answer.entities == ()
    assert [(i, marks(e)) for i, e in answer.updates] == [
        (7, [("chest pain", True, True, 9)]), (8, [("breathlessness", True, True, 9)])]
    later = marker.feed(turn(10, "patient", "No."))
    assert later.updates == ()


def test_negative_answers() -> None:
    for answer in ("Nope.", "Um, no, not really.", "i do n't think so .", "None, thankfully.",
                   "Not that I've noticed, no.", "No one.", "not at this time no"):
        assert is_negative_answer(answer), answer
    for answer in ("Yes.", "Mm-hmm.", "Not great.", "I don't remember.", "Sometimes yeah.",
                   "Only a little bit."):
        assert not is_negative_answer(answer), answer


def test_bad_turns_are_refused() -> None:
    with pytest.raises(ValueError, match="not in its text"):
        DialogueTurn(1, "clinician", "Any fever?", (entity("Any chills?", "chills"),))
    with pytest.raises(ValueError, match="appears twice"):
        mark_dialogue([turn(1, "clinician", "Any fever?"), turn(1, "patient", "No.")])


def test_asked_and_negated_by_round_trip_and_are_written_only_when_set() -> None:
    plain = entity("Any fever?", "fever")
    assert "asked" not in plain.to_dict() and "negated_by" not in plain.to_dict()
    for marked in (Entity(4, 9, "fever", CONDITION, 0.9, "model", asked=True),
                   Entity(4, 9, "fever", CONDITION, 0.9, "model", negated=True, asked=True,
                          negated_by=12),
                   Entity(4, 9, "fever", CONDITION, 0.9, "model", negated=True,
                          negated_by="seg-3")):
        record = marked.to_dict()
        assert record.get("asked", False) == marked.asked
        assert record.get("negated_by") == marked.negated_by
        assert Entity.from_dict(record) == marked
    with pytest.raises(ValueError, match="not negated"):
        Entity(4, 9, "fever", CONDITION, 0.9, "model", negated_by=3)
    with pytest.raises(TypeError, match="turn id"):
        Entity.from_dict({**plain.to_dict(), "negated": True, "negated_by": [3]})
