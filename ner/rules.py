"""The rule engine: medication attributes and negation for any language with a rule file.

:func:`apply_rules` takes a text and its (merged, non-overlapping) entities and returns them
with attributes linked to medications (:mod:`ner.attributes`) and the NEGATION trait set
(:mod:`ner.negation`). Everything language-specific is data in ``ner/patterns/<lang>.yaml``
(:mod:`ner.ruleset`); this module and the two it calls are the same for every language.

Text is compared accent-folded character by character (``día`` = ``dia``), which keeps every
offset valid. Sentences end at ``.``, ``!``, ``?``, ``;`` or ``:`` followed by a space or the
end of the text, and at line breaks, except where the mark lies inside an entity or attribute
("p.o. twice daily" is one sentence). Attributes never cross a sentence end, and negation
scopes stop at one.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from ner.attributes import find_attributes, link_attributes
from ner.folding import strip_accents, words
from ner.negation import negate
from ner.ruleset import LanguageRules, available_languages, load_rules, read_rules
from ner.schema import EntityType
from ner.spans import SpanIndex
from ner.types import Entity

__all__ = ["apply_rules", "available_languages", "fold_text", "load_rules", "read_rules",
           "sentence_ends"]

_SENTENCE_END = re.compile(r"[.!?;:]+(?=\s|$)|\n")


def fold_text(text: str) -> str:
    """``text`` with accents stripped from each character, the same length as ``text``."""
    return "".join(_fold_char(character) for character in text)


def _fold_char(character: str) -> str:
    if character.isascii():
        return character
    folded = strip_accents(character)
    return folded if len(folded) == 1 else character


def sentence_ends(text: str, protected: SpanIndex) -> list[tuple[int, int]]:
    """The ``(start, end)`` spans of the sentence-ending marks outside ``protected`` spans."""
    return [(m.start(), m.end()) for m in _SENTENCE_END.finditer(text)
            if not protected.overlaps(m.start(), m.end())]


def apply_rules(text: str, entities: Sequence[Entity], rules: LanguageRules) -> list[Entity]:
    """``entities`` of ``text`` with medication attributes linked and negation marked.

    ``entities`` must not overlap (merge them first, as :class:`ner.recognizer.EntityRecognizer`
    does); the result is sorted by offset.
    """
    ordered = sorted(entities, key=lambda entity: (entity.start, entity.end))
    if not ordered:
        return []
    folded = fold_text(text)
    entity_spans = [(entity.start, entity.end) for entity in ordered]
    attributes = []
    if any(entity.type is EntityType.MEDICATION for entity in ordered):
        attributes = find_attributes(text, folded, rules.attributes, SpanIndex(entity_spans))
    protected = SpanIndex([*entity_spans, *((a.start, a.end) for a in attributes)])
    ends = sentence_ends(text, protected)
    word_starts = [word.start for word in words(text)]
    linked = link_attributes(ordered, attributes, [end for _, end in ends], word_starts,
                             rules.link_max_words)
    return negate(folded, linked, rules.negation, ends, word_starts)
