"""Term constraints: where they come from, which of them can hold together, whether an output
honours them.

**Sources.** :func:`glossary_constraints` turns the glossary terms found in a source text into
constraints; :func:`pair_constraints` does the same for term pairs the caller gives per
segment (the WMT23 terminology task's ``terms_proper``), finding each source term in the text
with the glossary's tolerant matching.

**Consistency.** :func:`consistent` keeps a set of constraints one output can honour at once:
duplicates go, a constraint whose target lies inside another's target goes (honouring the
longer honours it), and of two whose source spans overlap the longer source wins.

**Checking.** :class:`TermChecker` says whether an output contains a target term: *satisfied*
means as whole words ignoring case (NFKC, casefold; languages written without spaces match
anywhere), *lenient* also ignores accents and inflection (the target language's folding rules
from :mod:`ner.folding`).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from functools import lru_cache

from ner.phrases import PhraseMatcher
from translate.glossary import Glossary
from translate.types import ConstraintOrigin, TermConstraint

UNSPACED_LANGUAGES = frozenset({"zh", "ja", "th", "lo", "km", "my"})


def glossary_constraints(text: str, glossary: Glossary) -> list[TermConstraint]:
    """A constraint for each glossary term found in ``text``."""
    return [TermConstraint(source=text[hit.start:hit.end], target=hit.entry.target,
                           start=hit.start, end=hit.end, origin="glossary",
                           code=hit.entry.code, do_not_translate=hit.entry.do_not_translate)
            for hit in glossary.find(text)]


def pair_constraints(text: str, pairs: Iterable[tuple[str, str]], language: str,
                     origin: ConstraintOrigin = "segment") -> list[TermConstraint]:
    """Constraints from (source term, target term) pairs, located in ``text`` where found."""
    constraints = []
    for source, target in pairs:
        matcher: PhraseMatcher[str] = PhraseMatcher(language, ignore_accents=True)
        matcher.add(source, source)
        hits = matcher.find(text)
        if hits:
            constraints.append(TermConstraint(text[hits[0].start:hits[0].end], target,
                                              hits[0].start, hits[0].end, origin))
        else:
            constraints.append(TermConstraint(source, target, origin=origin))
    return constraints


def consistent(constraints: Sequence[TermConstraint]) -> list[TermConstraint]:
    """The constraints one output can honour together (see the module docstring), in source
    order (unlocated ones last)."""
    kept: list[TermConstraint] = []
    ranked = sorted(constraints, key=lambda c: -len(c.source))
    for candidate in ranked:
        if any(_word_pattern(_fold(candidate.target)).search(_fold(other.target))
               for other in kept):
            continue
        if candidate.start is not None and any(
                other.start is not None and other.end is not None and candidate.end is not None
                and other.start < candidate.end and candidate.start < other.end
                for other in kept):
            continue
        kept.append(candidate)
    return sorted(kept, key=lambda c: (c.start is None, c.start or 0))


def _fold(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


class TermChecker:
    """Whether outputs in one language contain target terms (module docstring)."""

    def __init__(self, language: str) -> None:
        self.language = language
        self.unspaced = language.split("-")[0].casefold() in UNSPACED_LANGUAGES

    def satisfied(self, output: str, term: str) -> bool:
        """The term occurs as whole words, ignoring case."""
        text, wanted = _fold(output), _fold(term)
        if not wanted:
            return False
        if self.unspaced:
            return wanted in text
        return _word_pattern(wanted).search(text) is not None

    def lenient(self, output: str, term: str) -> bool:
        """The term occurs ignoring case, accents and inflection."""
        return self.satisfied(output, term) or bool(_lenient_matcher(self.language, term)
                                                    .find(output))


@lru_cache(maxsize=4096)
def _word_pattern(term: str) -> re.Pattern[str]:
    return re.compile(rf"(?<!\w){re.escape(term)}(?!\w)")


@lru_cache(maxsize=4096)
def _lenient_matcher(language: str, term: str) -> PhraseMatcher[str]:
    matcher: PhraseMatcher[str] = PhraseMatcher(language, ignore_accents=True)
    matcher.add(term, term)
    return matcher
