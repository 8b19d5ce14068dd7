"""The common base of every metric, after sacrebleu's ``Metric``: settings → signature → score.

A :class:`Metric` is built once with every setting that changes its number (language,
normaliser, tokeniser, matching mode…); :meth:`Metric.signature` writes those settings into a
string that travels with the number, so two figures are comparable only when their signatures
are equal. :meth:`Metric.corpus_score` scores hypotheses against references and returns a
:class:`Score`.

Every score is on a 0–100 scale (percent). ``higher_is_better`` says which way is good: error
rates, TER and latencies go down, everything else goes up.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any


class MetricUnavailableError(RuntimeError):
    """The metric cannot run here (a model or package is missing); the message says why."""


@dataclass(frozen=True)
class Score:
    """One corpus-level figure and the signature of the settings that produced it."""

    metric: str
    score: float
    signature: str
    higher_is_better: bool = True
    ci: float | None = None
    """Half-width of a 95 % confidence interval, when one was computed."""
    details: dict[str, Any] = field(default_factory=dict)
    """Counts behind the figure (edits, matches, support…), for reports."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        spread = f" ± {self.ci:.2f}" if self.ci is not None else ""
        return f"{self.metric} = {self.score:.2f}{spread} ({self.signature})"


class Metric(ABC):
    """A configured metric. Subclasses set ``name`` and ``higher_is_better``."""

    name: str
    higher_is_better: bool = True

    @abstractmethod
    def signature(self) -> str:
        """Every setting that changes the number, as ``name|key:value|…``."""

    @abstractmethod
    def corpus_score(self, hypotheses: Sequence[Any], references: Sequence[Any]) -> Score:
        """Score hypotheses against one reference each."""

    def _score(self, value: float, ci: float | None = None, **details: Any) -> Score:
        return Score(metric=self.name, score=value, signature=self.signature(),
                     higher_is_better=self.higher_is_better, ci=ci, details=details)


def check_lengths(hypotheses: Sequence[Any], references: Sequence[Any]) -> None:
    """Refuse corpora whose sides differ in length (one reference per hypothesis)."""
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} references")
