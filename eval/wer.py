"""Word and character error rates via jiwer, after the shared per-language normaliser."""

from __future__ import annotations

import importlib.metadata
from collections.abc import Sequence
from dataclasses import dataclass

import jiwer

from eval.normalize import CHARACTER_LANGUAGES, normalizer_for


@dataclass(frozen=True)
class ErrorRate:
    """Corpus-level error rate: (S + D + I) / N over all references together."""

    score: float
    unit: str
    substitutions: int
    deletions: int
    insertions: int
    reference_length: int
    signature: str

    def __post_init__(self) -> None:
        if self.score < 0:
            raise ValueError("an error rate cannot be negative")

    def __str__(self) -> str:
        return f"{self.unit.upper()} = {100 * self.score:.2f}% ({self.signature})"


def error_rate(references: Sequence[str], hypotheses: Sequence[str], language: str = "en",
               unit: str | None = None) -> ErrorRate:
    """WER (or CER for languages written without spaces) of hypotheses against references.

    Both sides go through :func:`eval.normalize.normalizer_for` first. Pairs whose reference
    is empty after normalisation are skipped, since WER is undefined for them.
    """
    if len(references) != len(hypotheses):
        raise ValueError(f"{len(references)} references but {len(hypotheses)} hypotheses")
    unit = unit or ("cer" if language in CHARACTER_LANGUAGES else "wer")
    normalize = normalizer_for(language)
    pairs = [(normalize(r), normalize(h)) for r, h in zip(references, hypotheses, strict=True)]
    pairs = [(r, h) for r, h in pairs if r]
    if not pairs:
        raise ValueError("every reference is empty after normalisation")
    refs, hyps = zip(*pairs, strict=True)
    if unit == "cer":
        refs = tuple(r.replace(" ", "") for r in refs)
        hyps = tuple(h.replace(" ", "") for h in hyps)
    out: jiwer.WordOutput | jiwer.CharacterOutput = (
        jiwer.process_characters(list(refs), list(hyps)) if unit == "cer"
        else jiwer.process_words(list(refs), list(hyps)))
    n = out.hits + out.substitutions + out.deletions
    score = (out.substitutions + out.deletions + out.insertions) / n
    signature = (f"{unit}|lang:{language}|norm:{normalize.__name__}"
                 f"|jiwer:{importlib.metadata.version('jiwer')}")
    return ErrorRate(score=score, unit=unit, substitutions=out.substitutions,
                     deletions=out.deletions, insertions=out.insertions, reference_length=n,
                     signature=signature)
