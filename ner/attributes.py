"""Medication attributes: finding "500 mg", "twice a day", "by mouth" … and linking them.

**Finding.** Every attribute pattern of the language runs over the accent-folded text; matches
that overlap an entity are dropped (an entity's span is never cut), and of overlapping matches
the leftmost, then longest, then earliest-listed wins ("two tablets" is one DOSAGE, not a
DOSAGE "two" and a FORM "tablets").

**Linking.** An attribute belongs to the nearest MEDICATION *in the same sentence*, counting
the words between them; on a tie the medication before it wins (attributes usually follow the
drug). More than ``max_words`` words apart, or no medication in the sentence: the attribute is
dropped. The medication's span is unchanged; its attributes are sorted by offset.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import replace

from ner.ruleset import AttributePattern
from ner.schema import EntityType
from ner.spans import SpanIndex, leftmost_longest
from ner.types import Attribute, Entity


def find_attributes(text: str, folded: str, patterns: Sequence[AttributePattern],
                    entities: SpanIndex) -> list[Attribute]:
    """Attribute spans of ``text`` (``folded``: the same text accent-folded), sorted by offset."""
    candidates = [(match.start(), match.end(), rank)
                  for rank, pattern in enumerate(patterns)
                  for match in pattern.regex.finditer(folded)
                  if match.end() > match.start()
                  and not entities.overlaps(match.start(), match.end())]
    return [Attribute(patterns[rank].type, start, end, text[start:end])
            for start, end, rank in leftmost_longest(candidates)]


def link_attributes(entities: Sequence[Entity], attributes: Sequence[Attribute],
                    sentence_starts: Sequence[int], word_starts: Sequence[int],
                    max_words: int) -> list[Entity]:
    """``entities`` with each attribute attached to its medication (see the module docstring).

    ``sentence_starts``: sorted offsets where a new sentence begins; ``word_starts``: sorted
    offsets of the text's words.
    """
    by_sentence: dict[int, list[int]] = {}
    for index, entity in enumerate(entities):
        if entity.type is EntityType.MEDICATION:
            by_sentence.setdefault(bisect_right(sentence_starts, entity.start), []).append(index)
    linked: dict[int, list[Attribute]] = {}
    for attribute in attributes:
        candidates = by_sentence.get(bisect_right(sentence_starts, attribute.start), [])
        best: tuple[int, int, int] | None = None
        for index in candidates:
            medication = entities[index]
            before = medication.end <= attribute.start
            gap = ((medication.end, attribute.start) if before
                   else (attribute.end, medication.start))
            between = bisect_left(word_starts, gap[1]) - bisect_left(word_starts, gap[0])
            key = (between, 0 if before else 1, index)
            if between <= max_words and (best is None or key < best):
                best = key
        if best is not None:
            linked.setdefault(best[2], []).append(attribute)
    result = list(entities)
    for index, found in linked.items():
        medication = result[index]
        merged = sorted((*medication.attributes, *found), key=lambda a: (a.start, a.end))
        result[index] = replace(medication, attributes=tuple(merged))
    return result
