"""Translation quality with sacrebleu: BLEU, chrF, chrF++ and TER, each with its signature.

Tokenisation follows the target language (``zh`` for Chinese, character level for Japanese,
Korean and Thai, ``13a`` elsewhere); TER turns on its Asian-script support for those
languages. Scores come with 95 % bootstrap confidence intervals, and two systems can be
compared by paired bootstrap resampling (Koehn 2004), all computed by sacrebleu itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sacrebleu.metrics.base import Metric as SacrebleuMetric
from sacrebleu.metrics.bleu import BLEU
from sacrebleu.metrics.chrf import CHRF
from sacrebleu.metrics.ter import TER
from sacrebleu.significance import PairedTest, Result

from eval.metric import Metric, Score, check_lengths

TRANSLATION_METRICS = ("bleu", "chrf", "chrf++", "ter")
_CHARACTER_TOKENISED = frozenset({"ja", "ko", "th"})


@dataclass(frozen=True)
class PairedComparison:
    """System against baseline on one metric, by paired bootstrap resampling."""

    metric: str
    baseline: float
    system: float
    p_value: float
    signature: str

    @property
    def significant(self) -> bool:
        """True when the difference holds at p < 0.05."""
        return self.p_value < 0.05


def make_metric(name: str, target_language: str) -> SacrebleuMetric:
    """The sacrebleu metric ``name`` (bleu, chrf, chrf++, ter) set up for a target language."""
    if name == "bleu":
        tokenize = "zh" if target_language == "zh" else \
            "char" if target_language in _CHARACTER_TOKENISED else "13a"
        return BLEU(tokenize=tokenize)
    if name in ("chrf", "chrf++"):
        return CHRF(word_order=2 if name == "chrf++" else 0)
    if name == "ter":
        return TER(asian_support=target_language in {"zh", *_CHARACTER_TOKENISED})
    raise ValueError(f"unknown translation metric {name!r}; choose from {TRANSLATION_METRICS}")


class TranslationMetric(Metric):
    """A sacrebleu metric behind the common interface; its signature is sacrebleu's own."""

    def __init__(self, name: str, target_language: str, n_bootstrap: int = 1000) -> None:
        self.metric = make_metric(name, target_language)
        self.name = {"bleu": "BLEU", "chrf": "chrF2", "chrf++": "chrF2++", "ter": "TER"}[name]
        self.higher_is_better = name != "ter"
        self.n_bootstrap = n_bootstrap

    def signature(self) -> str:
        return str(self.metric.get_signature())

    def corpus_score(self, hypotheses: Sequence[str], references: Sequence[str]) -> Score:
        """Corpus score with a 95 % bootstrap interval (``n_bootstrap`` 1 skips it)."""
        check_lengths(hypotheses, references)
        result = self.metric.corpus_score(list(hypotheses), [list(references)],
                                          n_bootstrap=self.n_bootstrap)
        ci = getattr(result, "_ci", None) if self.n_bootstrap > 1 else None
        return self._score(float(result.score), ci=float(ci) if ci is not None else None,
                           segments=len(hypotheses))

    def sentence_scores(self, hypotheses: Sequence[str],
                        references: Sequence[str]) -> list[float]:
        """Per-segment scores (BLEU here is sacrebleu's smoothed sentence BLEU)."""
        check_lengths(hypotheses, references)
        return [float(self.metric.sentence_score(h, [r]).score)
                for h, r in zip(hypotheses, references, strict=True)]


def score_translations(hypotheses: Sequence[str], references: Sequence[str],
                       target_language: str, metrics: Sequence[str] = TRANSLATION_METRICS,
                       n_bootstrap: int = 1000) -> list[Score]:
    """Score ``hypotheses`` against one reference each; ``n_bootstrap`` 1 skips the interval."""
    return [TranslationMetric(name, target_language, n_bootstrap).corpus_score(hypotheses,
                                                                               references)
            for name in metrics]


def compare_systems(baseline: Sequence[str], system: Sequence[str], references: Sequence[str],
                    target_language: str, metrics: Sequence[str] = ("bleu", "chrf"),
                    n_samples: int = 1000) -> list[PairedComparison]:
    """Paired bootstrap resampling: is ``system`` different from ``baseline``?

    sacrebleu counts resampled differences strictly greater than the observed one, so two
    identical outputs get p = 1 / (n_samples + 1), not 1: compare different systems only.
    """
    chosen = {name: make_metric(name, target_language) for name in metrics}
    test = PairedTest([("baseline", list(baseline)), ("system", list(system))], chosen,
                      [list(references)], test_type="bs", n_samples=n_samples)
    signatures, results = test()
    comparisons = []
    for key, pair in results.items():
        if key == "System":
            continue
        base, other = pair
        assert isinstance(base, Result) and isinstance(other, Result)
        assert other.p_value is not None
        comparisons.append(PairedComparison(
            metric=key, baseline=float(base.score), system=float(other.score),
            p_value=float(other.p_value), signature=str(signatures[key])))
    return comparisons
