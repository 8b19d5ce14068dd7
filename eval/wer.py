"""Word, character and match error rates via jiwer, after the shared per-language normaliser.

* WER and CER: (S + D + I) / N, the usual figure (can exceed 100 %).
* MER (match error rate, Morris et al. 2004): (S + D + I) / (H + S + D + I), bounded by 100 %.

Languages written without spaces (``CHARACTER_LANGUAGES``) are scored as CER whatever unit
is asked for by default. Pairs whose reference is empty after normalisation are skipped
(an error rate is undefined for them) and counted in the score's details.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import jiwer

from eval.metric import Metric, Score, check_lengths
from eval.normalize import CHARACTER_LANGUAGES, normalizer_for

Unit = Literal["wer", "cer", "mer"]


@dataclass(frozen=True)
class Alignment:
    """Edit counts of one corpus (or one utterance) after normalisation."""

    hits: int
    substitutions: int
    deletions: int
    insertions: int

    @property
    def reference_length(self) -> int:
        return self.hits + self.substitutions + self.deletions

    @property
    def errors(self) -> int:
        return self.substitutions + self.deletions + self.insertions


class ErrorRate(Metric):
    """WER, CER or MER for one language; ``unit`` defaults to CER for unspaced scripts."""

    higher_is_better = False

    def __init__(self, language: str = "en", unit: Unit | None = None) -> None:
        self.language = language
        self.unit: Unit = unit or ("cer" if language in CHARACTER_LANGUAGES else "wer")
        if self.unit not in ("wer", "cer", "mer"):
            raise ValueError(f"unknown error-rate unit {self.unit!r}; choose wer, cer or mer")
        self.name = self.unit.upper()
        self.normalize = normalizer_for(language)

    def signature(self) -> str:
        return (f"{self.unit}|lang:{self.language}|norm:{self.normalize.__name__}"
                f"|jiwer:{importlib.metadata.version('jiwer')}")

    def prepare(self, text: str) -> str:
        """The text as it is scored: normalised, and without spaces for CER."""
        text = self.normalize(text)
        return text.replace(" ", "") if self.unit == "cer" else text

    def align(self, hypotheses: Sequence[str], references: Sequence[str]) -> Alignment:
        """Edit counts over the pairs whose normalised reference is not empty."""
        pairs = [(self.prepare(r), self.prepare(h))
                 for h, r in zip(hypotheses, references, strict=True)]
        pairs = [(r, h) for r, h in pairs if r]
        if not pairs:
            return Alignment(0, 0, 0, 0)
        refs, hyps = (list(side) for side in zip(*pairs, strict=True))
        out: jiwer.WordOutput | jiwer.CharacterOutput = (
            jiwer.process_characters(refs, hyps) if self.unit == "cer"
            else jiwer.process_words(refs, hyps))
        return Alignment(out.hits, out.substitutions, out.deletions, out.insertions)

    def rate(self, counts: Alignment) -> float:
        """The error rate (0–100) of some edit counts."""
        denominator = counts.reference_length + (counts.insertions if self.unit == "mer" else 0)
        return 100 * counts.errors / denominator

    def corpus_score(self, hypotheses: Sequence[str], references: Sequence[str]) -> Score:
        check_lengths(hypotheses, references)
        counts = self.align(hypotheses, references)
        if counts.reference_length == 0:
            raise ValueError("every reference is empty after normalisation")
        skipped = sum(1 for r in references if not self.prepare(r))
        return self._score(self.rate(counts), hits=counts.hits,
                           substitutions=counts.substitutions, deletions=counts.deletions,
                           insertions=counts.insertions,
                           reference_length=counts.reference_length, skipped_empty=skipped)

    def charged(self, pieces: Sequence[str], reference: str) -> list[Alignment]:
        """The edits of ``pieces`` (a recording's hypothesis in order, e.g. its live finals)
        joined and aligned against the recording's whole ``reference``, each charged to a
        piece: a hit, substitution or insertion to the piece holding its hypothesis word, a
        run of deleted reference words to the piece before the gap (the first piece when the
        gap opens the recording). Word units only: it says which pieces hold the errors."""
        if self.unit != "wer":
            raise ValueError("edits are charged to pieces in word units only")
        words = [self.prepare(piece).split() for piece in pieces]
        owner = [i for i, mine in enumerate(words) for _ in mine]
        counts = [[0, 0, 0, 0] for _ in pieces]
        reference = self.prepare(reference)
        if not pieces or not reference.split():
            return [Alignment(0, 0, 0, 0) for _ in pieces]
        out = jiwer.process_words(reference, " ".join(w for mine in words for w in mine))
        kinds = {"equal": 0, "substitute": 1, "insert": 3}
        for chunk in out.alignments[0]:
            if chunk.type == "delete":
                before = owner[min(max(chunk.hyp_start_idx - 1, 0), len(owner) - 1)] \
                    if owner else 0
                counts[before][2] += chunk.ref_end_idx - chunk.ref_start_idx
                continue
            for index in range(chunk.hyp_start_idx, chunk.hyp_end_idx):
                counts[owner[index]][kinds[chunk.type]] += 1
        return [Alignment(*c) for c in counts]

    def sentence_scores(self, hypotheses: Sequence[str],
                        references: Sequence[str]) -> list[float | None]:
        """Per-utterance error rates (0–100); ``None`` where the reference is empty."""
        check_lengths(hypotheses, references)
        scores: list[float | None] = []
        for hypothesis, reference in zip(hypotheses, references, strict=True):
            counts = self.align([hypothesis], [reference])
            scores.append(self.rate(counts) if counts.reference_length else None)
        return scores


def error_rate(references: Sequence[str], hypotheses: Sequence[str], language: str = "en",
               unit: Unit | None = None) -> Score:
    """Corpus WER (or CER/MER) of hypotheses against references, on a 0–100 scale."""
    return ErrorRate(language, unit).corpus_score(hypotheses, references)
