"""Entities in a conversation: what the clinician asked about, and what the patient denied.

"Any chest pain?" said by the clinician does not mean the patient has chest pain: the entity is
*asked* (``Entity.asked``). A patient's "No" right after it negates it (``negated=True`` and
``negated_by`` = the id of the answering turn). The rules are simple, English, and work on the
entities a recognizer already found in each turn's text; nothing is re-recognised.

**Questions.** A clinician turn is cut into sentences (at ``.``, ``!``, ``?`` followed by a space
or the end, and at line breaks). A sentence is a yes/no question when it starts (after "okay",
"so", "and", "um" …) with "any", "ever", "what about", "how about" or an auxiliary and its
subject ("do you", "have you", "is there", "did it" …), which still works when ASR left the
punctuation out, or when it ends with ``?`` and does not start with a wh-word. A wh-question
("How is your pain?", "When did the cough start?") presupposes its entities: they are not asked.
A tag that asks for agreement with a plan ("We'll get an x-ray, okay?") does not make a
question; one that checks a fact ("…, right?") does.

An entity is *asked* when it lies in a yes/no question of a clinician turn, is a condition,
medication, test or procedure (anatomy says where, a time when, personal data who: none is
asked), and is not made known by the word before it ("Is *the* pain sharp?", "Has *your*
Naprosyn helped?": the clinician asks about something already reported). Statements in the
same turn ("Your x-ray was normal.", "I see you have asthma, have you …?") keep their entities
as they are.

**Answers.** The clinician's *open questions* are the yes/no questions at the end of what the
clinician said since someone else last spoke: a run of them ("Any fever? Chills?"), across
several clinician turns (a question cut into two live finals), broken by a statement or a
wh-question. Sentences of fillers only ("Okay.", "Mm-hmm.") neither open nor break a run. The
next turn answers them; if it is the patient's and starts (after "um", "well" …) with a negative
("no", "nope", "nah", "never", "none", "not really", "not that I know of", "I don't", "I
haven't", "I'm not" …, but not "I don't know" or "I'm not sure"), every asked entity of the open
questions is negated by it, except one the answer names without negating it ("Any fever or
cough?" — "No, just the cough": the cough stands; "No fever." denies it). What follows the "No"
is the patient's own text: "No, but I have a headache" keeps the headache a finding (with its
own NegEx negation, if any). "Yes" changes nothing; an answer by another role (a relative,
someone unknown) closes the open questions unanswered.

:func:`mark_dialogue` marks a whole conversation; :class:`DialogueMarker` does the same online,
one turn (live final) at a time, and reports the earlier turns an answer changes so a live
server can send an update for them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from itertools import pairwise

from ner.schema import EntityType
from ner.types import Entity

TurnId = int | str
"""A turn's id: a transcript segment's index or a live final's id."""

CLINICIAN = "clinician"
PATIENT = "patient"
RULES_VERSION = "dialogue-rules/1"
"""Names these rules; change it with any change that alters the marks (transcripts record it in
their entities' fingerprint, so a finished batch is marked again)."""

_SENTENCE_END = re.compile(r"[.!?]+(?=\s|$)|\n")
_WORD = re.compile(r"[a-z]+(?:'[a-z]+)*")
_OPENING_FILLERS = re.compile(
    r"^(?:(?:okay|ok|alright|all right|right|so|and|but|also|then|now|well|um+|uh+|uhm|er"
    r"|hmm+|mm+|mhm|mm-hmm|uh-huh|ah+|oh|great|good|perfect|sure|yes|yeah|yep|gotcha|cool"
    r"|fine|i see|got it|thank you|thanks)\b[\s,.!-]*)+")
"""Words that open a sentence without saying what kind it is ("Okay, so any fever?")."""
_WH = frozenset(["how", "what", "what's", "whats", "when", "where", "which", "who", "whom",
                 "whose", "why"])
_AUXILIARIES = frozenset(["do", "does", "did", "have", "has", "are", "is", "was", "were", "can",
                          "could", "would", "will"])
_SUBJECTS = frozenset(["you", "your", "you're", "there", "it", "its", "it's", "he", "she", "they",
                       "that", "this", "the", "any", "anyone", "anybody", "anything", "someone",
                       "somebody", "something", "we", "i"])
_POLAR_OPENERS = frozenset(["any", "anything", "ever"])
_PREPOSITIONS = frozenset(["for", "since", "in", "on", "at", "to", "from", "by", "with", "of"])
_DEFINITE = frozenset(["the", "your", "this", "that", "these", "those", "his", "her", "their",
                       "my", "its", "our"])
"""Words that make the entity after them known already ("is the pain sharp?"): not asked."""
_GENERAL = frozenset(["pain", "pains", "problem", "problems", "issue", "issues", "symptom",
                      "symptoms", "disease", "diseases", "disorder", "disorders", "trouble",
                      "sensation", "sensations", "feeling", "feelings", "change", "changes"])
"""Last words too general to say that an answer names an asked entity ("No, just heel pain"
does not name "joint pain")."""
_ASKABLE = frozenset([EntityType.MEDICAL_CONDITION, EntityType.MEDICATION,
                      EntityType.TEST_TREATMENT_PROCEDURE])
_AGREEMENT_TAGS = ("okay", "ok", "alright", "all right", "sound good", "sounds good",
                   "does that sound good", "does that sound okay", "is that okay",
                   "is that ok", "is that alright", "fair enough", "deal")
"""Tags that ask the patient to agree with a plan ("We'll get an x-ray, okay?"): no question."""
_NEGATIVE = re.compile(
    r"(?:no|nope|nah|never|none|nothing|negative|not really|not at all|not that"
    r"|not lately|not recently|not any|not at this time|not currently|not right now|not today"
    r"|neither|nobody|no one"
    r"|i don't|i do not|i haven't|i have not|i didn't|i did not|i'm not|i am not"
    r"|i wasn't|i was not|i've never|i have never|i never|i can't say i have)\b")
_UNCERTAIN = re.compile(
    r"(?:no\W+)?(?:i don't know(?! of)|i do not know(?! of)|i'm not sure|i am not sure"
    r"|not sure|i don't remember|i do not remember|i don't recall|i do not recall"
    r"|i can't remember|i cannot remember"
    r"|i'm not certain|i don't think i know)\b")
_ANSWER_FILLERS = re.compile(r"^(?:(?:um+|uh+|uhm|er|hmm+|mm+|ah+|oh|well|so|honestly|actually"
                             r"|i mean|i think)\b[\s,.!?-]*)+")


@dataclass(frozen=True)
class DialogueTurn:
    """One turn of a conversation: a transcript segment or a live final, with its entities.

    ``role`` is "clinician", "patient", "other" or None (unknown); ``entities`` are character
    spans of ``text`` as a recognizer returns them.
    """

    id: TurnId
    role: str | None
    text: str
    entities: tuple[Entity, ...] = ()

    def __post_init__(self) -> None:
        for entity in self.entities:
            if self.text[entity.start:entity.end] != entity.text:
                raise ValueError(f"turn {self.id!r}: entity {entity.text!r} at "
                                 f"{entity.start}:{entity.end} is not in its text "
                                 f"{self.text[:80]!r}")


@dataclass(frozen=True)
class DialogueStep:
    """What one turn fed to :class:`DialogueMarker` gives.

    ``entities``: the new turn's entities with the asked ones marked; ``updates``: for each
    earlier turn whose entities this turn negated, in turn order, its id and all its entities
    as they now stand.
    """

    entities: tuple[Entity, ...]
    updates: tuple[tuple[TurnId, tuple[Entity, ...]], ...] = ()


@dataclass(frozen=True)
class _Sentence:
    start: int
    end: int
    kind: str  # "polar", "wh", "statement" or "filler"


class DialogueMarker:
    """Marks asked and denied entities online, one turn at a time (module docstring).

    Keeps only the clinician turns with open questions since the patient last spoke. Turn ids
    must be unique within a conversation.
    """

    def __init__(self) -> None:
        self._turns: dict[TurnId, tuple[Entity, ...]] = {}
        self._open: list[tuple[TurnId, int]] = []
        self._in_run = False

    def feed(self, turn: DialogueTurn) -> DialogueStep:
        """Mark ``turn``'s entities and apply its answer to the open questions."""
        if turn.role == CLINICIAN:
            return DialogueStep(self._ask(turn))
        updates = self._answer(turn) if turn.role == PATIENT else ()
        self._turns.clear()
        self._open.clear()
        self._in_run = False
        return DialogueStep(turn.entities, updates)

    def _ask(self, turn: DialogueTurn) -> tuple[Entity, ...]:
        entities = list(turn.entities)
        for sentence in sentences(turn.text):
            if sentence.kind == "filler":
                continue
            if sentence.kind != "polar" or not self._in_run:
                self._open.clear()
            self._in_run = sentence.kind == "polar"
            if not self._in_run:
                continue
            for index, entity in enumerate(entities):
                if sentence.start <= entity.start < sentence.end and _askable(
                        turn.text[sentence.start:entity.start], entity):
                    entities[index] = replace(entity, asked=True)
                    self._open.append((turn.id, index))
        marked = tuple(entities)
        self._turns[turn.id] = marked
        return marked

    def _answer(self, turn: DialogueTurn) -> tuple[tuple[TurnId, tuple[Entity, ...]], ...]:
        if not self._open or not is_negative_answer(turn.text):
            return ()
        changed: dict[TurnId, list[Entity]] = {}
        for turn_id, index in self._open:
            entities = changed.setdefault(turn_id, list(self._turns[turn_id]))
            if not _affirmed(entities[index], turn):
                entities[index] = replace(entities[index], negated=True, negated_by=turn.id)
        return tuple((turn_id, tuple(entities)) for turn_id, entities in changed.items()
                     if tuple(entities) != self._turns[turn_id])


def _askable(before: str, entity: Entity) -> bool:
    """Whether an entity of a yes/no question is asked about: a condition, medication, test or
    procedure not already presupposed by a definite word before it ("the pain", "your
    Naprosyn"). Anatomy, times and personal data are never asked (where, when and who, not
    what)."""
    if entity.type not in _ASKABLE:
        return False
    previous = _WORD.findall(_normalise(before)[-40:])
    return not previous or previous[-1] not in _DEFINITE


def _affirmed(entity: Entity, answer: DialogueTurn) -> bool:
    """Whether a negative answer still names ``entity`` as present ("No, just the cough"): the
    entity's text, or a word sharing the first five letters of its last word ("nauseated" for
    "nausea", "rash" for "rashes"; not for words as general as "pain" or "problems"), appears
    in the answer other than inside an entity the answer itself negates ("No rashes")."""
    mentions = [match.start() for match in re.finditer(
        rf"\b{re.escape(entity.text)}\b", answer.text, re.IGNORECASE)]
    words = re.findall(r"[^\W\d_]+", entity.text.lower())
    if words and len(words[-1]) >= 4 and words[-1] not in _GENERAL:
        mentions += [match.start() for match in re.finditer(r"[^\W\d_]+", answer.text)
                     if _same_stem(match.group().lower(), words[-1])]
    return any(not any(found.negated and found.start <= start < found.end
                       for found in answer.entities)
               for start in mentions)


def _same_stem(word: str, key: str) -> bool:
    """Words of four letters or more that agree in their first five (or are equal)."""
    length = min(5, len(word), len(key))
    return word == key or (length >= 4 and word[:length] == key[:length])


def mark_dialogue(turns: Sequence[DialogueTurn]) -> list[tuple[Entity, ...]]:
    """The entities of every turn of a whole conversation, asked and denied ones marked."""
    marker = DialogueMarker()
    position: dict[TurnId, int] = {}
    result: list[tuple[Entity, ...]] = []
    for turn in turns:
        if turn.id in position:
            raise ValueError(f"turn id {turn.id!r} appears twice in the conversation")
        position[turn.id] = len(result)
        step = marker.feed(turn)
        result.append(step.entities)
        for turn_id, entities in step.updates:
            result[position[turn_id]] = entities
    return result


def sentences(text: str) -> list[_Sentence]:
    """The sentences of a clinician turn, each classified as a yes/no question ("polar"), a
    wh-question ("wh"), a "statement" or a "filler" (only words like "okay").

    A sentence is also cut after each comma that opens a question: in "I see you have asthma,
    have you had any medication for this?" the first clause is a statement; in "…, ten being the
    worst, how would you rate it?" the last is a wh-question; in "Tell me, did you have any
    fever or chills, any sweating?" both questions are yes/no questions.
    """
    found: list[_Sentence] = []
    start = 0
    ends = [match.end() for match in _SENTENCE_END.finditer(text)]
    if not ends or ends[-1] < len(text):
        ends.append(len(text))
    for end in ends:
        if text[start:end].strip():
            found.extend(_classified(text, start, end))
        start = end
    return found


def _classified(text: str, start: int, end: int) -> list[_Sentence]:
    sentence = text[start:end]
    cuts = [comma.end() for comma in re.finditer(",", sentence)
            if _opening_kind(sentence[comma.end():]) in ("polar", "wh")]
    if cuts:
        bounds = [0, *cuts, len(sentence)]
        return [_Sentence(start + begin, start + finish,
                          _opening_kind(sentence[begin:finish]) or "statement")
                for begin, finish in pairwise(bounds)]
    kind = _opening_kind(sentence)
    if kind is not None:
        return [_Sentence(start, end, kind)]
    stripped = sentence.rstrip()
    if not stripped.endswith("?"):
        return [_Sentence(start, end, "statement")]
    tail = _normalise(stripped.rstrip("?").rsplit(",", 1)[-1]).strip(" .")
    return [_Sentence(start, end, "statement" if "," in stripped and tail in _AGREEMENT_TAGS
                      else "polar")]


def _opening_kind(sentence: str) -> str | None:
    """"filler", "wh" or "polar" as the sentence's first words say; None when they do not."""
    opening = _WORD.findall(_OPENING_FILLERS.sub("", _normalise(sentence).strip()))
    if not opening:
        return "filler"
    if len(opening) > 1 and opening[0] in _PREPOSITIONS and opening[1] in _WH:
        return "wh"  # "for how long …?", "in which …?"
    first, second = opening[0], opening[1] if len(opening) > 1 else ""
    if first in ("when", "where") and second not in _AUXILIARIES:
        return None  # "when I touch the knee, …": a clause of time or place, not a question
    if first in _WH:
        return "polar" if second == "about" and first in ("what", "how") else "wh"
    if first in _POLAR_OPENERS or (first in _AUXILIARIES and second in _SUBJECTS):
        return "polar"
    return None


def is_negative_answer(text: str) -> bool:
    """True when an answer starts with a negative ("No, …", "Um, not really", "I don't")."""
    opening = _ANSWER_FILLERS.sub("", _normalise(text).lstrip(" ,.-"))
    return bool(_NEGATIVE.match(opening)) and not _UNCERTAIN.match(opening)


def _normalise(text: str) -> str:
    """Lower case, curly apostrophes straight, tokenised contractions joined ("do n't",
    "i ' m" in ACI-Bench), spaces collapsed."""
    lowered = text.lower().replace("\u2019", "'").replace("\u2018", "'")
    lowered = re.sub(r"\s+n't\b", "n't", lowered)
    lowered = re.sub(r"\s*'\s*(m|s|re|ve|ll|d)\b", r"'\1", lowered)
    return re.sub(r"\s+", " ", lowered)

