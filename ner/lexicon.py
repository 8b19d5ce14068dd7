"""The lexicon matcher: finds the terms of a list in a text, as entities with character offsets.

**Matching.** Terms and text are split into words (:func:`ner.folding.words`) and each word
is reduced to a key (:class:`ner.folding.Folder`: NFKC, casefold, accents optionally stripped,
the term list language's inflection rules). A term occurs where its key sequence occurs as a
run of whole words with no hard gap (sentence punctuation) inside. Occurrences are
*leftmost-longest* and never overlap: scanning left to right, the longest term starting at the
current word is taken and the scan resumes after it ("chest pain" wins over "pain").

**Cost.** The terms are compiled once into a word trie. Scanning walks the trie from each word
at most as deep as the longest term (in words), so a text of ``n`` words costs at most
``n × max_words`` dictionary steps: linear in the text for a given lexicon, whatever the number
of terms. Word keys are memoised per matcher.

**Conflicts.** Terms with the same key sequence are one term: the first in the list wins and
the others are counted in :attr:`LexiconMatcher.duplicates`. Terms that yield no word, or
contain a hard gap ("spread, expand"), can never match and are listed in
:attr:`LexiconMatcher.unmatchable`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ner.datafiles import DATA_DIR
from ner.folding import Folder, primary_language, words
from ner.schema import EntityType
from ner.terms import GlossarySide, Term, load_term_list, terms_from_glossary
from ner.types import Entity
from speech.errors import InvalidOptionError

if TYPE_CHECKING:
    from eval.readers import GlossaryEntry

LEXICON_DIR = DATA_DIR / "lexicons"
"""The term lists shipped with medstream: ``<language>_medical.tsv``."""


@dataclass(frozen=True)
class TermSpan:
    """Words ``start`` to ``end`` (end exclusive) of a scanned text hold ``term``."""

    start: int
    end: int
    term: Term


class _Node:
    """A trie node: the word keys that may follow, and the term that ends here."""

    __slots__ = ("children", "term")

    def __init__(self) -> None:
        self.children: dict[str, _Node] = {}
        self.term: Term | None = None


class LexiconMatcher:
    """Finds the terms of one language's term list in texts (see the module docstring)."""

    def __init__(self, terms: Iterable[Term], language: str, *, ignore_accents: bool = False,
                 inflections: bool = True) -> None:
        """Compile ``terms`` for texts in ``language`` (which picks the inflection rules).

        ``ignore_accents`` matches "fievre" with "fièvre"; ``inflections=False`` matches exact
        word forms only (still case-insensitive).
        """
        self.language = primary_language(language)
        self.folder = Folder(self.language, accents=not ignore_accents, inflections=inflections)
        self._root = _Node()
        self.size = 0
        """Distinct terms compiled."""
        self.duplicates = 0
        """Terms dropped because an earlier term has the same keys."""
        self.max_words = 0
        """Words in the longest term: the most trie steps scanning takes from one word."""
        unmatchable: list[Term] = []
        for term in terms:
            if not self._insert(term):
                unmatchable.append(term)
        self.unmatchable: tuple[Term, ...] = tuple(unmatchable)

    @classmethod
    def from_term_list(cls, path: str | Path, language: str, *, ignore_accents: bool = False,
                       inflections: bool = True) -> LexiconMatcher:
        """A matcher over a ``term, type[, code]`` file (:func:`ner.terms.load_term_list`)."""
        return cls(load_term_list(path), language, ignore_accents=ignore_accents,
                   inflections=inflections)

    @classmethod
    def from_glossary(cls, entries: Iterable[GlossaryEntry], entity_type: EntityType, *,
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

    def _insert(self, term: Term) -> bool:
        """Add ``term`` to the trie; False when it can never match."""
        term_words = list(words(term.text))
        if not term_words or any(word.hard_before for word in term_words[1:]):
            return False
        node = self._root
        for word in term_words:
            node = node.children.setdefault(self.folder.key(word.text), _Node())
        if node.term is None:
            node.term = term
            self.size += 1
            self.max_words = max(self.max_words, len(term_words))
        else:
            self.duplicates += 1
        return True

    def scan(self, keys: Sequence[str], hard_before: Sequence[bool] | None = None
             ) -> Iterator[TermSpan]:
        """Leftmost-longest, non-overlapping term occurrences in a sequence of word keys.

        ``hard_before[i]`` says a hard gap precedes word ``i`` (a term may not span it). Each
        key is read at most :attr:`max_words` times.
        """
        position, length = 0, len(keys)
        while position < length:
            node, best, index = self._root, None, position
            while index < length:
                if index > position and hard_before is not None and hard_before[index]:
                    break
                child = node.children.get(keys[index])
                if child is None:
                    break
                node, index = child, index + 1
                if node.term is not None:
                    best = TermSpan(position, index, node.term)
            if best is None:
                position += 1
            else:
                yield best
                position = best.end

    def find(self, text: str) -> list[Entity]:
        """The term occurrences in ``text`` as entities (score 1.0, the term's type and code)."""
        text_words = list(words(text))
        keys = [self.folder.key(word.text) for word in text_words]
        hard = [word.hard_before for word in text_words]
        entities = []
        for span in self.scan(keys, hard):
            start, end = text_words[span.start].start, text_words[span.end - 1].end
            entities.append(Entity(start, end, text[start:end], span.term.type, 1.0, "lexicon",
                                   code=span.term.code))
        return entities

    def find_batch(self, texts: Sequence[str]) -> list[list[Entity]]:
        """:meth:`find` for each text."""
        return [self.find(text) for text in texts]


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
