"""Entity F1 with seqeval's conventions: strict span matching over IOB2 tags, per type.

A span is correct only when its boundaries and its type both match the reference. Tags are
read the way conlleval and seqeval (default mode) read them: an ``I-X`` that does not continue
an ``X`` span starts a new one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Span:
    """Tokens ``start`` to ``end`` (end exclusive) of one sentence, of entity type ``type``."""

    start: int
    end: int
    type: str


@dataclass(frozen=True)
class PRF:
    """Precision, recall and F1 (0-1) with the counts they come from."""

    precision: float
    recall: float
    f1: float
    support: int
    """Reference spans."""

    @classmethod
    def of(cls, correct: int, predicted: int, gold: int) -> PRF:
        precision = correct / predicted if predicted else 0.0
        recall = correct / gold if gold else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        return cls(precision, recall, f1, gold)


@dataclass(frozen=True)
class EntityScores:
    micro: PRF
    per_type: dict[str, PRF]
    signature: str = "entity-f1|match:strict|scheme:IOB2|chunking:conlleval"


def spans_from_iob2(tags: Sequence[str]) -> list[Span]:
    """The entity spans of one sentence's IOB2 tags (``O``, ``B-X``, ``I-X``)."""
    spans: list[Span] = []
    start: int | None = None
    current = ""
    for index, tag in enumerate([*tags, "O"]):
        prefix, _, kind = tag.partition("-")
        continues = prefix == "I" and kind == current and start is not None
        if start is not None and not continues:
            spans.append(Span(start, index, current))
            start = None
        if prefix == "B" or (prefix == "I" and not continues):
            start, current = index, kind
    return spans


def entity_f1(gold: Iterable[Sequence[Span]], predicted: Iterable[Sequence[Span]]) -> EntityScores:
    """Strict span F1, micro-averaged and per type, over sentences given as span lists."""
    correct: Counter[str] = Counter()
    n_gold: Counter[str] = Counter()
    n_pred: Counter[str] = Counter()
    for gold_spans, pred_spans in zip(gold, predicted, strict=True):
        gold_set, pred_set = set(gold_spans), set(pred_spans)
        correct.update(s.type for s in gold_set & pred_set)
        n_gold.update(s.type for s in gold_set)
        n_pred.update(s.type for s in pred_set)
    types = sorted(set(n_gold) | set(n_pred))
    per_type = {t: PRF.of(correct[t], n_pred[t], n_gold[t]) for t in types}
    micro = PRF.of(sum(correct.values()), sum(n_pred.values()), sum(n_gold.values()))
    return EntityScores(micro=micro, per_type=per_type)
