"""The lexicon matcher: finds the terms of a list in a text, as entities with character offsets.

Matching, cost and conflicts are those of :class:`ner.phrases.PhraseMatcher` (case-, accent-
and inflection-tolerant, leftmost-longest, linear in the text): a :class:`LexiconMatcher` is a
phrase matcher whose payloads are typed terms. Terms that can never match are listed in
:attr:`LexiconMatcher.unmatchable`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from ner.datafiles import DATA_DIR
from ner.folding import primary_language
from ner.phrases import PhraseMatcher
from ner.schema import EntityType
from ner.terms import GlossaryPair, GlossarySide, Term, load_term_list, terms_from_glossary
from ner.types import Entity
from speech.errors import InvalidOptionError

LEXICON_DIR = DATA_DIR / "lexicons"
"""The term lists shipped with medstream: ``<language>_medical.tsv``."""


class LexiconMatcher(PhraseMatcher[Term]):
    """Finds the terms of one language's term list in texts (see the module docstring)."""

    def __init__(self, terms: Iterable[Term], language: str, *, ignore_accents: bool = False,
                 inflections: bool = True) -> None:
        """Compile ``terms`` for texts in ``language`` (which picks the inflection rules).

        ``ignore_accents`` matches "fievre" with "fièvre"; ``inflections=False`` matches exact
        word forms only (still case-insensitive).
        """
        super().__init__(language, ignore_accents=ignore_accents, inflections=inflections)
        unmatchable = [term for term in terms if not self.add(term.text, term)]
        self.unmatchable: tuple[Term, ...] = tuple(unmatchable)

    @classmethod
    def from_term_list(cls, path: str | Path, language: str, *, ignore_accents: bool = False,
                       inflections: bool = True) -> LexiconMatcher:
        """A matcher over a ``term, type[, code]`` file (:func:`ner.terms.load_term_list`)."""
        return cls(load_term_list(path), language, ignore_accents=ignore_accents,
                   inflections=inflections)

    @classmethod
    def from_glossary(cls, entries: Iterable[GlossaryPair], entity_type: EntityType, *,
                      side: GlossarySide = "target", language: str | None = None,
                      ignore_accents: bool = False, inflections: bool = True) -> LexiconMatcher:
        """A matcher over one side of a glossary, every term typed ``entity_type``.

        ``language`` defaults to the glossary's language on that side; InvalidOptionError when
        the glossary names none and none is given.
        """
        found, terms = terms_from_glossary(entries, entity_type, side)
        chosen = language or found
        if chosen is None:
            raise InvalidOptionError(f"the glossary names no {side} language: pass language=")
        return cls(terms, chosen, ignore_accents=ignore_accents, inflections=inflections)

    def find_entities(self, text: str) -> list[Entity]:
        """The term occurrences in ``text`` as entities (score 1.0, the term's type and code)."""
        return [Entity(m.start, m.end, text[m.start:m.end], m.payload.type, 1.0, "lexicon",
                       code=m.payload.code) for m in self.find(text)]

    def find_batch(self, texts: Sequence[str]) -> list[list[Entity]]:
        """:meth:`find_entities` for each text."""
        return [self.find_entities(text) for text in texts]


def builtin_lexicon(language: str = "en") -> LexiconMatcher:
    """The term list shipped for ``language`` (``lexicons/<language>_medical.tsv``).

    Only English ships one (common drugs, conditions, anatomy and procedures, without codes).
    InvalidOptionError names the languages available.
    """
    code = primary_language(language)
    path = LEXICON_DIR / f"{code}_medical.tsv"
    if not path.is_file():
        known = sorted(p.name.split("_", 1)[0] for p in LEXICON_DIR.glob("*_medical.tsv"))
        raise InvalidOptionError(f"no built-in medical term list for {language!r} (available: "
                                 f"{', '.join(known)}); build a LexiconMatcher from your own "
                                 f"term list or glossary")
    return LexiconMatcher.from_term_list(path, code)
