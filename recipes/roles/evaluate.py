"""How well a role classifier does on role-labelled conversations: per turn and per speaker.

Figures, each over a set of dialogues:

* ``turn_accuracy``: the turn's own likeliest role (:meth:`RoleClassifier.turn`, three roles)
  against its speaker's role; ``turn_accuracy_cp``: over clinician and patient turns only, the
  likelier of those two;
* ``speaker_accuracy``: speakers whose role :meth:`RoleClassifier.speakers` gets right, and
  ``dialogue_accuracy``: dialogues whose speakers are all right;
* the main pair (the two speakers who said most; where the truth has one clinician and one
  patient in it): ``pair_accuracy``, ``pair_confidence`` (mean) and ``pair_log_loss`` (of the
  joint assignment's probability), which say whether the confidence is a probability;
* ``extra_speakers`` / ``extra_correct``: the speakers beyond the main pair.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace

import numpy as np

from ner.role_features import word_count
from ner.roles import CLINICIAN, PATIENT, ROLES, RoleClassifier
from recipes.roles.data import Dialogue, Turn

TextForm = Callable[[str], str]


@dataclass(frozen=True)
class RoleScores:
    dialogues: int
    turns: int
    turn_accuracy: float
    turn_accuracy_cp: float
    speakers: int
    speaker_accuracy: float
    dialogue_accuracy: float
    pairs: int
    pair_accuracy: float
    pair_confidence: float
    pair_log_loss: float
    extra_speakers: int
    extra_correct: int

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


def main_pair(dialogue: Dialogue) -> list[str]:
    """The two speakers with the most words (ties: first to speak), as the classifier ranks."""
    words: dict[str, int] = {}
    for turn in dialogue.turns:
        words[turn.speaker] = words.get(turn.speaker, 0) + word_count(turn.text)
    order = list(words)
    return sorted(order, key=lambda s: (-words[s], order.index(s)))[:2]


def first_turns(dialogues: Sequence[Dialogue], count: int) -> list[Dialogue]:
    """The dialogues longer than ``count`` turns, cut to their first ``count`` (a live
    session's roles are decided as it goes)."""
    return [replace(d, turns=d.turns[:count]) for d in dialogues if len(d.turns) > count]


_SENTENCE_END = re.compile(r"(?<=[.?!])\s+")


def by_sentence(dialogues: Sequence[Dialogue]) -> list[Dialogue]:
    """The dialogues with every sentence a turn of its own, as ASR segments cut a speaker's
    turn (the speakers' roles are the same; there are more, shorter turns to add up)."""
    return [replace(d, turns=tuple(Turn(t.speaker, t.role, sentence)
                                   for t in d.turns
                                   for sentence in _SENTENCE_END.split(t.text.strip())
                                   if sentence.strip()))
            for d in dialogues]


FRAGMENT = "fragment"
"""The speaker id :func:`with_fragments` gives the split-off turns."""


def with_fragments(dialogues: Sequence[Dialogue], max_words: int = 4) -> list[Dialogue]:
    """The dialogues with their last short turn (1 to ``max_words`` words, e.g. "Okay.") said
    by a new speaker whose role is ``other``: what a diarizer does when it splits a short
    utterance off as a speaker of its own. Dialogues without such a turn are left out."""
    split = []
    for dialogue in dialogues:
        short = [i for i, turn in enumerate(dialogue.turns)
                 if 0 < word_count(turn.text) <= max_words]
        if short:
            turns = list(dialogue.turns)
            turns[short[-1]] = Turn(FRAGMENT, "other", turns[short[-1]].text)
            split.append(replace(dialogue, turns=tuple(turns)))
    return split


def score(classifier: RoleClassifier, dialogues: Sequence[Dialogue],
          form: TextForm = str) -> RoleScores:
    """The figures above, with every turn's text in ``form`` (as written, or spoken style)."""
    turns = right = cp_turns = cp_right = 0
    speakers = speakers_right = dialogues_right = extra = extra_right = 0
    pair_right: list[bool] = []
    pair_confidence: list[float] = []
    for dialogue in dialogues:
        texts = [(turn.speaker, form(turn.text)) for turn in dialogue.turns]
        for turn, (_, text) in zip(dialogue.turns, texts, strict=True):
            log_probs = classifier.turn_log_probs(text)
            turns += 1
            right += ROLES[int(np.argmax(log_probs))] == turn.role
            if turn.role != "other":
                cp_turns += 1
                guess = "clinician" if log_probs[CLINICIAN] >= log_probs[PATIENT] else "patient"
                cp_right += guess == turn.role
        truth = dialogue.speaker_roles()
        guesses = classifier.speakers(texts)
        correct = {speaker: guesses[speaker].role == role for speaker, role in truth.items()}
        speakers += len(correct)
        speakers_right += sum(correct.values())
        dialogues_right += all(correct.values())
        pair = main_pair(dialogue)
        if len(pair) == 2 and {truth[s] for s in pair} == {"clinician", "patient"}:
            pair_right.append(all(correct[s] for s in pair))
            pair_confidence.append(guesses[pair[0]].confidence)
        extra += len(correct) - len(pair)
        extra_right += sum(ok for s, ok in correct.items() if s not in pair)
    losses = [-math.log(max(1e-9, c if ok else 1.0 - c))
              for ok, c in zip(pair_right, pair_confidence, strict=True)]
    return RoleScores(
        dialogues=len(dialogues), turns=turns, turn_accuracy=_share(right, turns),
        turn_accuracy_cp=_share(cp_right, cp_turns), speakers=speakers,
        speaker_accuracy=_share(speakers_right, speakers),
        dialogue_accuracy=_share(dialogues_right, len(dialogues)), pairs=len(pair_right),
        pair_accuracy=_share(sum(pair_right), len(pair_right)),
        pair_confidence=_mean(pair_confidence), pair_log_loss=_mean(losses),
        extra_speakers=extra, extra_correct=extra_right)


def _share(part: int, whole: int) -> float:
    return part / whole if whole else math.nan


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else math.nan
