"""Entity F1 on ASR output, where hypothesis and reference words differ.

Two views, both standard:

* **Bag of entities** (SLUE-NER, Shon et al. 2022): each side is the multiset of
  ``(type, phrase)`` pairs, phrases normalised with the shared per-language normaliser; word
  order and position are ignored. ``label_only`` scores the multiset of types alone (SLUE's
  "label F1"): did the system notice *a* medication, whatever it heard.
* **Projection**: reference spans are carried onto the hypothesis through the word alignment
  (jiwer's Levenshtein alignment over case- and punctuation-folded words); a projected span
  covers the hypothesis words aligned (as match or substitution) to the span's words. Tagger
  spans on the hypothesis are then scored strictly against the projected spans. A reference
  entity whose words were all deleted projects to nothing and stays in the denominator, so
  recall pays for ASR deletions.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import jiwer

from eval.entities import Counts, EntityF1, EntityScores, entity_score, strict_counts
from eval.metric import Metric, Score, check_lengths
from eval.normalize import normalizer_for
from ner.iob import Span


@dataclass(frozen=True)
class TaggedText:
    """Words of one utterance and the entity spans over them (word indices, end exclusive)."""

    words: tuple[str, ...]
    spans: tuple[Span, ...] = ()

    @classmethod
    def from_text(cls, text: str, spans: Sequence[Span] = ()) -> TaggedText:
        """Whitespace-separated words of ``text`` with spans over them."""
        return cls(tuple(text.split()), tuple(spans))

    @classmethod
    def from_char_spans(cls, text: str,
                        spans: Iterable[tuple[int, int, str]]) -> TaggedText:
        """Whitespace words of ``text``; each ``(start, end, type)`` character span becomes
        the words it overlaps (spans covering no word are dropped)."""
        words = [(m.start(), m.end()) for m in re.finditer(r"\S+", text)]
        result = []
        for start, end, kind in spans:
            inside = [i for i, (a, b) in enumerate(words) if a < end and b > start]
            if inside:
                result.append(Span(inside[0], inside[-1] + 1, kind))
        return cls(tuple(text[a:b] for a, b in words), tuple(result))

    def phrase(self, span: Span) -> str:
        return " ".join(self.words[span.start:span.end])


def fold(word: str) -> str:
    """A word as the aligner compares it: case-folded, punctuation removed."""
    kept = "".join(c for c in word.casefold() if not unicodedata.category(c).startswith("P"))
    return kept or word.casefold()


def project_spans(reference: Sequence[str], hypothesis: Sequence[str],
                  spans: Sequence[Span]) -> list[Span | None]:
    """Each reference span carried onto the hypothesis words; ``None`` if all were deleted."""
    if not reference:
        return [None for _ in spans]
    if not hypothesis:
        return [None for _ in spans]
    alignment = jiwer.process_words(" ".join(fold(w) for w in reference),
                                    " ".join(fold(w) for w in hypothesis))
    target: list[int | None] = [None] * len(reference)
    for chunk in alignment.alignments[0]:
        if chunk.type in ("equal", "substitute"):
            for offset in range(chunk.ref_end_idx - chunk.ref_start_idx):
                target[chunk.ref_start_idx + offset] = chunk.hyp_start_idx + offset
    projected: list[Span | None] = []
    for span in spans:
        hits = [t for t in target[span.start:span.end] if t is not None]
        projected.append(Span(min(hits), max(hits) + 1, span.type) if hits else None)
    return projected


class ProjectedEntityF1(EntityF1):
    """Strict entity F1 of hypothesis spans against reference spans projected onto them."""

    def __init__(self) -> None:
        super().__init__("strict")
        self.name = "entity-F1-projected"

    def signature(self) -> str:
        return "entity-f1|match:strict|projection:jiwer-word-alignment|fold:casefold-nopunct"

    def scores(self, hypotheses: Sequence[TaggedText],
               references: Sequence[TaggedText]) -> EntityScores:
        check_lengths(hypotheses, references)
        gold: list[list[Span]] = []
        lost: Counter[str] = Counter()
        for hypothesis, reference in zip(hypotheses, references, strict=True):
            projected = project_spans(reference.words, hypothesis.words, reference.spans)
            gold.append([s for s in projected if s is not None])
            lost.update(r.type for r, s in zip(reference.spans, projected, strict=True)
                        if s is None)
        counts = strict_counts(gold, [h.spans for h in hypotheses])
        counts.gold.update(lost)  # entities the ASR deleted are still owed
        return counts.scores()

    def corpus_score(self, hypotheses: Sequence[TaggedText],  # type: ignore[override]
                     references: Sequence[TaggedText]) -> Score:
        return self.from_scores(self.scores(hypotheses, references))


class BagOfEntitiesF1(Metric):
    """SLUE-style F1 over the multiset of ``(type, normalised phrase)`` pairs (or of types)."""

    def __init__(self, language: str = "en", label_only: bool = False) -> None:
        self.language = language
        self.label_only = label_only
        self.normalize = normalizer_for(language)
        self.name = "entity-F1-bag-label" if label_only else "entity-F1-bag"

    def signature(self) -> str:
        unit = "type" if self.label_only else "type+phrase"
        return (f"entity-f1|match:bag-of-entities({unit})|lang:{self.language}"
                f"|norm:{self.normalize.__name__}|convention:SLUE")

    def _bag(self, text: TaggedText) -> Counter[tuple[str, str]]:
        return Counter((s.type, "" if self.label_only else self.normalize(text.phrase(s)))
                       for s in text.spans)

    def corpus_score(self, hypotheses: Sequence[TaggedText],
                     references: Sequence[TaggedText]) -> Score:
        check_lengths(hypotheses, references)
        counts = Counts(Counter(), Counter(), Counter())
        for hypothesis, reference in zip(hypotheses, references, strict=True):
            gold, pred = self._bag(reference), self._bag(hypothesis)
            for bag, counter in ((gold & pred, counts.correct), (gold, counts.gold),
                                 (pred, counts.predicted)):
                for (kind, _), count in bag.items():
                    counter[kind] += count
        return entity_score(self, counts.scores())
