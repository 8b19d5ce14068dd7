"""Streaming latency of the live interpreter, on the audio clock, from a recorded timeline.

The interpreter emits, for each utterance, a series of events: partial hypotheses while the
speaker talks, then one final hypothesis. Each :class:`Emission` carries ``time``, the seconds of
source audio consumed when it was emitted (the *audio clock*: computation time does not count,
so figures do not depend on the machine that replayed the audio), and ``text``, the whole current
hypothesis of the utterance. An :class:`UtteranceTimeline` adds the utterance's speech onset
and offset on the same clock, and optionally its reference transcript or translation.

Measures, all in seconds and all lower-is-better:

* **First-partial latency** — time of the first emission with at least one word (after
  normalisation, so a lone filler or transcriber tag does not count) minus the speech onset.
* **Final lag** — time of the final emission minus the speech offset. Utterances without a
  final are left out and counted as ``missing_final``. It may be negative when the system
  finalises before the annotated offset.
* **LAAL** (and classic **AL**) — SimulEval's Length-Adaptive Average Lagging over word delays.

Word delays. Word *i* of the final hypothesis is *stable* from the first emission after which
the hypothesis' prefix up to and including word *i* equals the final's in every later emission
up to the final — the moment a LocalAgreement policy would have committed it. Its delay is that
emission's time **minus the utterance's speech onset**: the audio clock restarted at the onset,
the way SimulEval measures delays from the start of each source segment. With the source length
taken as ``end - start`` (the utterance's duration), a delay equal to the source length means
"emitted once the whole utterance had been heard". :func:`word_stable_times` gives the same
instants on the absolute audio clock of the recording.

Words are the whitespace tokens of the text after :func:`eval.normalize.normalizer_for`, or its
characters (spaces removed) for languages written without spaces, as the error rates do.
"""

from __future__ import annotations

import math
from abc import abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from eval.metric import Metric, Score, check_lengths
from eval.normalize import CHARACTER_LANGUAGES, normalizer_for

TokenUnit = Literal["word", "char"]
Tokenizer = Callable[[str], list[str]]


@dataclass(frozen=True)
class Emission:
    """One event of the stream: the utterance's whole current hypothesis at audio time ``time``."""

    time: float
    """Seconds of source audio consumed when the event was emitted (audio clock)."""
    text: str
    """The full current hypothesis of the utterance, not an increment."""
    final: bool = False

    def __post_init__(self) -> None:
        if not math.isfinite(self.time) or self.time < 0:
            raise ValueError(f"emission time must be a finite number of seconds >= 0, "
                             f"not {self.time!r}")


@dataclass(frozen=True)
class UtteranceTimeline:
    """The emissions of one utterance, with its speech onset and offset on the audio clock."""

    start: float
    end: float
    emissions: tuple[Emission, ...]
    reference: str = ""
    """The reference transcript (or translation) of the utterance, for LAAL; may be empty."""

    def __post_init__(self) -> None:
        if not isinstance(self.emissions, tuple):  # accept any sequence, store a tuple
            object.__setattr__(self, "emissions", tuple(self.emissions))
        for name, value in (("start", self.start), ("end", self.end)):
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"utterance {name} must be a finite number of seconds >= 0, "
                                 f"not {value!r}")
        if self.end < self.start:
            raise ValueError(f"utterance ends ({self.end}) before it starts ({self.start})")
        for index in range(1, len(self.emissions)):
            before, after = self.emissions[index - 1].time, self.emissions[index].time
            if after < before:
                raise ValueError(f"emission times must be non-decreasing: emission {index} at "
                                 f"{after} s comes after one at {before} s")
        finals = [i for i, e in enumerate(self.emissions) if e.final]
        if len(finals) > 1:
            raise ValueError(f"an utterance has at most one final emission, found {len(finals)} "
                             f"(at indices {finals})")
        if finals and finals[0] != len(self.emissions) - 1:
            raise ValueError(f"the final emission must be the last one: it is at index "
                             f"{finals[0]} of {len(self.emissions)}")

    @property
    def final(self) -> Emission | None:
        """The final emission, or ``None`` when the stream never finalised this utterance."""
        if self.emissions and self.emissions[-1].final:
            return self.emissions[-1]
        return None

    @property
    def duration(self) -> float:
        """Seconds of speech: the source length of the latency formulas."""
        return self.end - self.start


def tokenizer_for(language: str = "en", unit: TokenUnit | None = None) -> Tokenizer:
    """Normalise with the shared normaliser, then split on whitespace (or into characters).

    ``unit`` defaults to characters for languages written without spaces.
    """
    unit = unit or ("char" if language in CHARACTER_LANGUAGES else "word")
    if unit not in ("word", "char"):
        raise ValueError(f"unknown token unit {unit!r}; choose word or char")
    normalize = normalizer_for(language)

    def tokenize(text: str) -> list[str]:
        normalized = normalize(text)
        return list(normalized.replace(" ", "")) if unit == "char" else normalized.split()

    tokenize.__name__ = "char" if unit == "char" else "whitespace"
    return tokenize


def first_partial_time(timeline: UtteranceTimeline, tokenize: Tokenizer | None = None
                       ) -> float | None:
    """Audio time of the first emission with at least one token; ``None`` if there is none."""
    tokenize = tokenize or tokenizer_for()
    for emission in timeline.emissions:
        if tokenize(emission.text):
            return emission.time
    return None


def word_stable_times(timeline: UtteranceTimeline, tokenize: Tokenizer | None = None
                      ) -> tuple[float, ...]:
    """For each token of the final hypothesis, the absolute audio time it became stable.

    Token *i* is stable from the earliest emission *k* such that every emission from *k* to the
    final starts with the final's tokens ``0..i``. The times are non-decreasing. Raises
    ``ValueError`` when the utterance has no final emission.
    """
    tokenize = tokenize or tokenizer_for()
    final = timeline.final
    if final is None:
        raise ValueError("the utterance has no final emission, so its words have no delays")
    target = tokenize(final.text)
    # agreed[j]: how many leading tokens emission j shares with the final.
    agreed = []
    for emission in timeline.emissions:
        tokens = tokenize(emission.text)
        shared = 0
        while shared < min(len(tokens), len(target)) and tokens[shared] == target[shared]:
            shared += 1
        agreed.append(shared)
    # held[j] = min(agreed[j:]): tokens 0..held[j]-1 stay in place from emission j to the final.
    # It never decreases with j, so token i is stable from the first j with held[j] > i.
    held = list(agreed)
    for j in range(len(held) - 2, -1, -1):
        held[j] = min(held[j], held[j + 1])
    times: list[float] = []
    j = 0
    for i in range(len(target)):
        while held[j] <= i:  # terminates: held[-1] == len(target) > i
            j += 1
        times.append(timeline.emissions[j].time)
    return tuple(times)


def word_delays(timeline: UtteranceTimeline, tokenize: Tokenizer | None = None
                ) -> tuple[float, ...]:
    """:func:`word_stable_times` minus the speech onset: delays on the utterance's own clock."""
    return tuple(t - timeline.start for t in word_stable_times(timeline, tokenize))


def average_lagging(delays: Sequence[float], source_length: float, reference_length: int = 0,
                    *, length_adaptive: bool = True) -> float:
    """LAAL (default) or AL of one utterance, computed the way SimulEval computes it.

    ``delays`` are the target tokens' delays, ``source_length`` the source's length in the same
    unit, ``reference_length`` the reference's token count (0 when there is no reference).
    LAAL's rate uses ``max(len(delays), reference_length)`` target tokens; AL's uses the
    reference length, or the hypothesis length when there is no reference (SimulEval's
    ``use_ref_len`` fallback).

    Follows ``ALScorer.compute`` and ``LAALScorer.compute`` in facebookresearch/SimulEval,
    ``simuleval/evaluator/scorers/latency_scorer.py`` (main branch): a first delay past the
    source length is returned as is; otherwise the sum runs up to and including tau, the first
    token whose delay is ``>= source_length``, or over every token when none reaches it.
    (SimulEval's older ``simuleval/metrics/latency.py`` instead skipped delays beyond the source
    length and stopped only on equality; both agree when no delay overshoots the source.)
    One guard is ours: a source of length <= 0 returns the first delay, the limit of the
    formula (tau = 1), where SimulEval would divide by zero.
    """
    if not delays:
        raise ValueError("average lagging needs at least one target token")
    if reference_length < 0:
        raise ValueError(f"reference length must be >= 0, not {reference_length}")
    if source_length <= 0 or delays[0] > source_length:
        return float(delays[0])
    target_length = (max(len(delays), reference_length) if length_adaptive
                     else reference_length or len(delays))
    gamma = target_length / source_length
    lagging = 0.0
    tau = 0
    for t_minus_1, delay in enumerate(delays):
        lagging += delay - t_minus_1 / gamma
        tau = t_minus_1 + 1
        if delay >= source_length:
            break
    return lagging / tau


def _summary(values: Sequence[float]) -> dict[str, float]:
    """Median, 90th and 95th percentiles (linear interpolation) and maximum."""
    array = np.asarray(values, dtype=float)
    return {"median": float(np.median(array)), "p90": float(np.percentile(array, 90)),
            "p95": float(np.percentile(array, 95)), "max": float(array.max())}


def _references(timelines: Sequence[UtteranceTimeline], references: Sequence[str]
                ) -> list[str]:
    """The references given, or each timeline's own when none are."""
    if len(references) == 0:
        return [t.reference for t in timelines]
    check_lengths(timelines, references)
    return list(references)


class _LatencyMetric(Metric):
    """Per-utterance seconds, averaged over the utterances that have a value."""

    higher_is_better = False
    _missing = "missing"
    """Detail key counting the utterances left out."""

    @abstractmethod
    def sentence_scores(self, timelines: Sequence[UtteranceTimeline],
                        references: Sequence[str] = ()) -> list[float | None]:
        """Per-utterance latencies in seconds; ``None`` where the utterance is left out."""

    def _details(self, timelines: Sequence[UtteranceTimeline],
                 references: Sequence[str]) -> dict[str, Any]:
        return {}

    def corpus_score(self, timelines: Sequence[UtteranceTimeline],
                     references: Sequence[str] = ()) -> Score:
        """Mean over utterances, with n, median, p90, p95, max and the counts left out."""
        if not timelines:
            raise ValueError("no utterances to score")
        scores = self.sentence_scores(timelines, references)
        values = [s for s in scores if s is not None]
        if not values:
            raise ValueError(f"no utterance has a {self.name} value: all {len(scores)} "
                             f"were left out ({self._missing})")
        details: dict[str, Any] = {"n": len(values), **_summary(values),
                                   self._missing: len(scores) - len(values),
                                   **self._details(timelines, references)}
        return self._score(float(np.mean(values)), **details)


class FirstPartialLatency(_LatencyMetric):
    """Seconds from speech onset to the first emission with at least one token."""

    name = "first-partial-latency"
    _missing = "no_partial"

    def __init__(self, language: str = "en", unit: TokenUnit | None = None) -> None:
        self.language = language
        self.tokenize = tokenizer_for(language, unit)
        self.normalize = normalizer_for(language)

    def signature(self) -> str:
        return (f"first-partial-latency|unit:s|clock:audio|from:onset|lang:{self.language}"
                f"|norm:{self.normalize.__name__}|tok:{self.tokenize.__name__}|stat:mean")

    def sentence_scores(self, timelines: Sequence[UtteranceTimeline],
                        references: Sequence[str] = ()) -> list[float | None]:
        times = [first_partial_time(t, self.tokenize) for t in timelines]
        return [None if time is None else time - t.start
                for time, t in zip(times, timelines, strict=True)]


class FinalLag(_LatencyMetric):
    """Seconds from speech offset to the final emission; utterances without one are left out."""

    name = "final-lag"
    _missing = "missing_final"

    def signature(self) -> str:
        return "final-lag|unit:s|clock:audio|from:offset|stat:mean"

    def sentence_scores(self, timelines: Sequence[UtteranceTimeline],
                        references: Sequence[str] = ()) -> list[float | None]:
        return [None if t.final is None else t.final.time - t.end for t in timelines]


class LAAL(_LatencyMetric):
    """SimulEval's LAAL over word delays (or classic AL with ``length_adaptive=False``).

    References — given to :meth:`corpus_score`, or else each timeline's ``reference`` — give
    the reference length; an empty reference falls back to the hypothesis length. Utterances
    without a final (``missing_final``) or whose final has no tokens (``empty_final``) are left
    out; ``left_out`` is their sum.
    """

    _missing = "left_out"

    def __init__(self, language: str = "en", unit: TokenUnit | None = None,
                 length_adaptive: bool = True) -> None:
        self.language = language
        self.length_adaptive = length_adaptive
        self.name = "LAAL" if length_adaptive else "AL"
        self.tokenize = tokenizer_for(language, unit)
        self.normalize = normalizer_for(language)

    def signature(self) -> str:
        length = "max(hyp,ref)" if self.length_adaptive else "ref"
        return (f"{self.name.lower()}|unit:s|clock:audio|from:onset|lang:{self.language}"
                f"|norm:{self.normalize.__name__}|tok:{self.tokenize.__name__}"
                f"|delay:stable-prefix|len:{length}|impl:simuleval|stat:mean")

    def sentence_scores(self, timelines: Sequence[UtteranceTimeline],
                        references: Sequence[str] = ()) -> list[float | None]:
        scores: list[float | None] = []
        for timeline, reference in zip(timelines, _references(timelines, references),
                                       strict=True):
            if timeline.final is None:
                scores.append(None)
                continue
            delays = word_delays(timeline, self.tokenize)
            scores.append(average_lagging(delays, timeline.duration,
                                          len(self.tokenize(reference)),
                                          length_adaptive=self.length_adaptive)
                          if delays else None)
        return scores

    def _details(self, timelines: Sequence[UtteranceTimeline],
                 references: Sequence[str]) -> dict[str, Any]:
        empty = sum(1 for t in timelines
                    if t.final is not None and not self.tokenize(t.final.text))
        missing = sum(1 for t in timelines if t.final is None)
        return {"missing_final": missing, "empty_final": empty}


def latency_distribution(timelines: Sequence[UtteranceTimeline], references: Sequence[str] = (),
                         language: str = "en") -> dict[str, list[float]]:
    """Per-utterance values of each measure (utterances left out are dropped), for histograms.

    Keys are the metric names: ``first-partial-latency``, ``final-lag`` and ``LAAL``.
    """
    metrics: list[_LatencyMetric] = [FirstPartialLatency(language), FinalLag(), LAAL(language)]
    return {m.name: [s for s in m.sentence_scores(timelines, references) if s is not None]
            for m in metrics}


def sentence_lags(finals: Sequence[tuple[float, float]], sentence_ends: Sequence[float],
                  tolerance: float = 0.3) -> list[float | None]:
    """How long after each spoken sentence ended a final had all of it: for each sentence end
    (exact, e.g. of synthesised speech), the earliest ``sent`` time among the finals
    (``(end, sent)`` pairs on the audio clock) whose ``end`` reaches it, less ``tolerance``
    (recognisers' word times are rough), minus the sentence end; None when no final reaches
    it. Unlike the final lag, this does not depend on where the recogniser says a final ends.
    """
    lags: list[float | None] = []
    for end in sentence_ends:
        reached = [sent for final_end, sent in finals if final_end >= end - tolerance]
        lags.append(min(reached) - end if reached else None)
    return lags
