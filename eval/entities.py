"""Entity F1 on reference text, per type, in the four matching modes of SemEval-2013 task 9.

* ``strict``: boundaries and type both match (seqeval's default, conlleval's figure);
* ``exact``: boundaries match, the type may differ;
* ``partial``: boundaries overlap, type ignored; an overlap counts half (P = (COR + ½ PAR) / ACT);
* ``type``: boundaries overlap and the type matches.

``strict`` is computed here (it agrees with seqeval to the last digit, see the tests); the other
three are nervaluate's (Segura-Bedmar et al. 2013 definitions, as nervaluate implements them).
Tags are read the way conlleval and seqeval (default mode) read them: an ``I-X`` that does not
continue an ``X`` span starts a new one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal, get_args

from nervaluate import Evaluator

from eval.metric import Metric, Score, check_lengths
from ner.iob import Span

MatchMode = Literal["strict", "exact", "partial", "type"]
MATCH_MODES: tuple[MatchMode, ...] = get_args(MatchMode)
_NERVALUATE_MODE = {"exact": "exact", "partial": "partial", "type": "ent_type"}


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
    mode: MatchMode = "strict"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def entity_f1(gold: Iterable[Sequence[Span]], predicted: Iterable[Sequence[Span]],
              mode: MatchMode = "strict") -> EntityScores:
    """Span F1 in ``mode``, micro-averaged and per type, over sentences given as span lists."""
    gold, predicted = list(gold), list(predicted)
    check_lengths(predicted, gold)
    if mode == "strict":
        return strict_counts(gold, predicted).scores()
    if mode not in _NERVALUATE_MODE:
        raise ValueError(f"unknown match mode {mode!r}; choose from {MATCH_MODES}")
    return _nervaluate(gold, predicted, mode)


@dataclass
class Counts:
    """Per-type counts behind strict F1: correct, predicted and reference (gold) spans."""

    correct: Counter[str]
    predicted: Counter[str]
    gold: Counter[str]

    def scores(self, mode: MatchMode = "strict") -> EntityScores:
        types = sorted(set(self.gold) | set(self.predicted))
        per_type = {t: PRF.of(self.correct[t], self.predicted[t], self.gold[t]) for t in types}
        micro = PRF.of(sum(self.correct.values()), sum(self.predicted.values()),
                       sum(self.gold.values()))
        return EntityScores(micro=micro, per_type=per_type, mode=mode)


def strict_counts(gold: Iterable[Sequence[Span]],
                  predicted: Iterable[Sequence[Span]]) -> Counts:
    """Exact-match counts per type over sentences given as span lists."""
    counts = Counts(Counter(), Counter(), Counter())
    for gold_spans, pred_spans in zip(gold, predicted, strict=True):
        gold_set, pred_set = set(gold_spans), set(pred_spans)
        counts.correct.update(s.type for s in gold_set & pred_set)
        counts.gold.update(s.type for s in gold_set)
        counts.predicted.update(s.type for s in pred_set)
    return counts


def _nervaluate(gold: Sequence[Sequence[Span]], predicted: Sequence[Sequence[Span]],
                mode: MatchMode) -> EntityScores:
    def documents(sentences: Sequence[Sequence[Span]]) -> list[list[dict[str, Any]]]:
        # nervaluate's ends are inclusive.
        return [[{"label": s.type, "start": s.start, "end": s.end - 1} for s in sorted(spans)]
                for spans in sentences]

    types = sorted({s.type for spans in [*gold, *predicted] for s in spans})
    if not types:
        return EntityScores(micro=PRF.of(0, 0, 0), per_type={}, mode=mode)
    results = Evaluator(documents(gold), documents(predicted), tags=types,
                        loader="dict").evaluate()
    key = _NERVALUATE_MODE[mode]

    def prf(result: Any) -> PRF:
        return PRF(float(result.precision), float(result.recall), float(result.f1),
                   int(result.possible))

    per_type = {t: prf(results["entities"][t][key]) for t in types}
    return EntityScores(micro=prf(results["overall"][key]), per_type=per_type, mode=mode)


class EntityF1(Metric):
    """Micro-averaged entity F1 (0–100) in one matching mode; details carry P, R and per type."""

    def __init__(self, mode: MatchMode = "strict") -> None:
        if mode not in MATCH_MODES:
            raise ValueError(f"unknown match mode {mode!r}; choose from {MATCH_MODES}")
        self.mode = mode
        self.name = f"entity-F1-{mode}"

    def signature(self) -> str:
        source = "medstream(seqeval-equivalent)" if self.mode == "strict" else "nervaluate"
        return f"entity-f1|match:{self.mode}|average:micro|scheme:IOB2|impl:{source}"

    def corpus_score(self, hypotheses: Sequence[Sequence[Span]],
                     references: Sequence[Sequence[Span]]) -> Score:
        return self.from_scores(entity_f1(references, hypotheses, self.mode))

    def from_scores(self, scores: EntityScores) -> Score:
        """An :class:`EntityScores` as a :class:`Score` (F1 × 100; P, R, per type in details)."""
        return entity_score(self, scores)


def entity_score(metric: Metric, scores: EntityScores) -> Score:
    """``scores`` as ``metric``'s :class:`Score`: F1 × 100, with P, R and per-type details."""
    return metric._score(100 * scores.micro.f1, precision=100 * scores.micro.precision,
                         recall=100 * scores.micro.recall, support=scores.micro.support,
                         per_type={t: asdict(v) for t, v in scores.per_type.items()})
