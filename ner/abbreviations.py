"""Abbreviations a text defines ("overactive bladder (OAB)") take their long form's entity type.

Written medical text defines an abbreviation once, in parentheses after its long form, and then
uses it bare. A tagger sees one sentence at a time: "OAB" alone looks like nothing, and the
model misses it, or it marks an abbreviation whose long form it did not mark ("parathyroid
hormone (PTH)" is no medication, yet "PTH" may come out as one). Applied to a tagger's output,
the definitions of each abstract raise strict F1 on BC5CDR devel by about 1.5 points (see the
shipped model's card).

Definitions are found with the algorithm of Schwartz & Hearst (2003, "A simple algorithm for
identifying abbreviation definitions in biomedical text"): the short form is the text in
parentheses (up to a comma or semicolon), 2 to 10 characters, at most two words once hyphens are
attached, starting with a letter or digit and holding a capital letter (stricter than the
paper: prose puts many lower-case words in parentheses); its long form is the shortest
stretch of the at most ``min(len + 5, 2 * len)`` words before the parenthesis that holds the
short form's letters and digits in order, the first one at the start of a word.

An :class:`AbbreviationMemory` reads a stream of texts in order (the segments of one
transcript, the sentences of one document) and remembers each definition for the texts that
follow (``window`` of them, or all):

- if the recognizers marked an entity that ends where the long form ends (and does not hold
  it as the object of a preposition: "deficiency of aspartoacylase (ASPA)" names an enzyme),
  every later occurrence of the short form (a whole word, same case) outside other entities
  becomes an entity of that type, with the long form's score and source ``abbreviation``;
  an entity that is exactly such an occurrence but of another type takes the long form's;
- if no entity touches the long form, an entity that is exactly a later occurrence of the short
  form is dropped.

The parenthesised occurrence itself counts as a later one. Definitions made in a text apply to
that text first.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from ner.schema import EntityType
from ner.spans import non_overlapping
from ner.types import Entity

ABBREVIATIONS = "schwartz-hearst/2"
"""Names this step in the recognizer's fingerprint (``ner.build``): change it when the rules
change, so the batch job annotates its transcripts again."""
MAX_SHORT_FORM = 10
"""Longest short form in characters (Schwartz & Hearst)."""

_PARENTHESIS = re.compile(r"\(([^()]*)\)")
_WORD = re.compile(r"\S+")


@dataclass(frozen=True)
class Definition:
    """A short form defined in a text: ``text[long_start:long_end]`` in parentheses
    ``text[short_start:short_end]``."""

    short_form: str
    long_start: int
    long_end: int
    short_start: int
    short_end: int


@dataclass(frozen=True)
class _Meaning:
    """What a remembered short form stands for: an entity type and score, or nothing."""

    pattern: re.Pattern[str]
    type: EntityType | None
    score: float = 0.0
    drop: bool = False
    """Drop entities that are exactly the short form (its long form is no entity)."""


def find_definitions(text: str) -> list[Definition]:
    """The abbreviation definitions "long form (SF)" of ``text``, in order."""
    found = []
    for match in _PARENTHESIS.finditer(text):
        inner = re.split(r"[,;]", match.group(1))[0]
        short = inner.strip()
        if not _is_short_form(short):
            continue
        before = text[:match.start()].rstrip()
        words = list(_WORD.finditer(before))
        if not words:
            continue
        short_start = match.start(1) + inner.index(short)
        compact = re.sub(r"\s+", "", short)
        limit = min(len(compact) + 5, 2 * len(compact))
        first = words[max(0, len(words) - limit)].start()
        long_start = _long_form_start(compact, before[first:])
        if long_start is None:
            continue
        long_start += first
        long_form = before[long_start:]
        if len(long_form) <= len(short) or short.lower() in long_form.lower().split():
            continue
        found.append(Definition(short, long_start, len(before), short_start,
                                short_start + len(short)))
    return found


class AbbreviationMemory:
    """Definitions seen in a stream of texts, applied to the entities of each (module
    docstring)."""

    def __init__(self, window: int | None = None) -> None:
        """``window``: how many texts a definition is remembered for after its own (None: the
        whole stream)."""
        if window is not None and window < 0:
            raise ValueError(f"window must be at least 0, not {window}")
        self.window = window
        self._texts = 0
        self._recent: deque[tuple[int, dict[str, _Meaning]]] = deque()
        """(index of the text, its definitions) for each text that defined something."""

    def resolve(self, text: str, entities: Sequence[Entity]) -> list[Entity]:
        """``entities`` of ``text`` (the next text of the stream) with its own and the
        remembered definitions applied; sorted by offset."""
        learnt = {d.short_form: _meaning(d, entities) for d in find_definitions(text)}
        if learnt:
            self._recent.append((self._texts, learnt))
        if self.window is not None:
            while self._recent and self._recent[0][0] < self._texts - self.window:
                self._recent.popleft()
        self._texts += 1
        meanings: dict[str, _Meaning] = {}
        for _, defined in self._recent:  # oldest first: a newer definition wins
            meanings.update(defined)
        return _apply(text, entities, meanings) if meanings else sorted(
            entities, key=lambda e: e.start)


def resolve_document(texts: Sequence[str], entities: Sequence[Sequence[Entity]],
                     window: int | None = None) -> list[list[Entity]]:
    """:meth:`AbbreviationMemory.resolve` over ``texts`` in order, one memory for all."""
    memory = AbbreviationMemory(window)
    return [memory.resolve(text, found) for text, found in zip(texts, entities, strict=True)]


def _is_short_form(short: str) -> bool:
    if not 2 <= len(short) <= MAX_SHORT_FORM or not short[0].isalnum():
        return False
    if not any(c.isupper() for c in short):
        return False
    return len(re.sub(r"\s*-\s*", "-", short).split()) <= 2


def _long_form_start(short: str, candidate: str) -> int | None:
    """Where the long form of ``short`` (no spaces) starts in ``candidate``, or None: every
    letter or digit of ``short`` found right to left, the first at a word's start."""
    s, position = len(short) - 1, len(candidate) - 1
    while s >= 0:
        char = short[s].lower()
        if not char.isalnum():
            s -= 1
            continue
        while position >= 0 and (candidate[position].lower() != char or (
                s == 0 and position > 0 and candidate[position - 1].isalnum())):
            position -= 1
        if position < 0:
            return None
        position -= 1
        s -= 1
    start = position + 1  # the short form's first character; its word starts at
    while start > 0 and not candidate[start - 1].isspace():
        start -= 1
    return start


def _meaning(definition: Definition, entities: Sequence[Entity]) -> _Meaning:
    parts = [re.escape(p) for p in re.split(r"\s+", definition.short_form)]
    pattern = re.compile(r"(?<![\w-])" + r"\s*".join(parts) + r"(?![\w-])")
    touching = [e for e in entities
                if e.start < definition.long_end and definition.long_start < e.end]
    for entity in touching:
        if entity.end == definition.long_end:
            if _object_of_preposition(definition, entity):
                break
            return _Meaning(pattern, entity.type, entity.score)
    # An entity inside the long form that does not end with it (part of a longer phrase)
    # says nothing either way: the short form's own entities are left alone.
    return _Meaning(pattern, None, drop=not touching)


_PREPOSITION = re.compile(r"\b(?:of|in|to|for|with|by|on|from)\s*$", re.IGNORECASE)


def _object_of_preposition(definition: Definition, entity: Entity) -> bool:
    """Whether the long form is the object of a preposition inside a longer entity: in
    "deficiency of aspartoacylase (ASPA)" the entity is the deficiency, "ASPA" the enzyme."""
    if entity.start >= definition.long_start:
        return False
    before = entity.text[:definition.long_start - entity.start]
    return _PREPOSITION.search(before) is not None


def _apply(text: str, entities: Sequence[Entity], meanings: dict[str, _Meaning]
           ) -> list[Entity]:
    kept = list(entities)
    for meaning in meanings.values():
        if meaning.drop or meaning.type is not None:
            # Dropped, or made again below with the long form's type.
            spans = {(m.start(), m.end()) for m in meaning.pattern.finditer(text)}
            kept = [e for e in kept if (e.start, e.end) not in spans
                    or (meaning.type is not None and e.type is meaning.type)]
    occurrences = [Entity(start=match.start(), end=match.end(), text=match.group(),
                          type=meaning.type, score=meaning.score, source="abbreviation")
                   for meaning in meanings.values() if meaning.type is not None
                   for match in meaning.pattern.finditer(text)]
    # The entities kept come first, so an occurrence inside one of them is left to it.
    candidates = kept + occurrences
    order = {id(entity): rank for rank, entity in enumerate(candidates)}
    return non_overlapping(candidates, lambda e: (e.start, e.end), lambda e: order[id(e)])

