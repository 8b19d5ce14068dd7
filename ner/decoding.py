"""Word labels from a tagger's per-word label distributions: the best valid IOB2 sequence.

Taking each word's most probable label on its own can produce sequences IOB2 does not allow
(``O I-ANATOMY``, ``B-MEDICATION I-ANATOMY``); conlleval then reads the stray ``I-`` as the start
of an entity, which is how a greedy tagger gets entity boundaries wrong. Viterbi decoding over
the same distributions with the forbidden transitions removed picks the most probable sequence
that is valid IOB2 (the constrained decoding of BERT-CRF taggers, without a learned transition
matrix: every allowed transition costs nothing).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ner.schema import type_of_label

DECODING = "iob2-viterbi/2"
"""Names this decoding in fingerprints: outputs made by another decoding are redone. /2: raw
text tagged sentence by sentence with whole-word spans (``ner.tagger``, issue 22)."""

NEVER = -1e9
"""Log-score of a forbidden transition (finite, so an all-forbidden row cannot produce NaN)."""


def iob2_constraints(labels: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(start, transition) log-scores: 0 where IOB2 allows, :data:`NEVER` where it does not.

    ``I-T`` may only follow ``B-T`` or ``I-T`` and cannot start a sentence; everything else is
    allowed. ``transition[i, j]`` scores label ``j`` after label ``i``.
    """
    count = len(labels)
    start = np.zeros(count)
    transition = np.zeros((count, count))
    for j, label in enumerate(labels):
        if not label.startswith("I-"):
            continue
        start[j] = NEVER
        kind = type_of_label(label)
        for i, previous in enumerate(labels):
            if previous == "O" or type_of_label(previous) != kind:
                transition[i, j] = NEVER
    return start, transition


def viterbi(log_probs: np.ndarray, start: np.ndarray, transition: np.ndarray) -> list[int]:
    """The label indices of the best path through ``log_probs`` (words × labels)."""
    words = log_probs.shape[0]
    if words == 0:
        return []
    score = start + log_probs[0]
    back = np.zeros((words, log_probs.shape[1]), dtype=np.int64)
    for word in range(1, words):
        candidates = score[:, None] + transition  # previous × next
        back[word] = candidates.argmax(axis=0)
        score = candidates.max(axis=0) + log_probs[word]
    path = [int(score.argmax())]
    for word in range(words - 1, 0, -1):
        path.append(int(back[word, path[-1]]))
    return path[::-1]
