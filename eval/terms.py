"""Terminology metrics: medical-term recall for ASR, and WMT23 term success for MT.

**Matching.** A term occurs in a text when its normalised unit sequence occurs as a contiguous
run of whole units in the normalised text. Both sides go through the shared per-language
normaliser (:func:`eval.normalize.normalizer_for`), so case, punctuation, hyphens and (for
English) spelling variants and spelled-out numbers do not matter. Units are words, except for
languages written without spaces (:data:`eval.normalize.CHARACTER_LANGUAGES`: zh, ja…), where
they are the characters of the normalised text with spaces removed. One departure from the
shared normaliser: Whisper's normalisers delete everything between round brackets (meant for
transcriber notes such as "(laughs)"), which would silently drop terms written in brackets —
"systemic inflammatory response syndrome (SIRS)" — so round brackets are turned into spaces
first; the signatures say ``parens:kept``. Matching is case-blind, so an acronym that spells a
common word ("WHO") also matches that word ("who"), and there is no lemmatisation: an inflected
form ("injury" for "injuries") is a miss.

**Term recall** (:class:`TermRecall`, for ASR) is the "medical term recall" that commercial
medical ASR services advertise: every glossary term occurrence in a reference must be
recognised. For each segment and term, the hypothesis is credited with min(reference count,
hypothesis count), so repeating a term does not earn credit twice; the score is
100 × credited / reference occurrences, over the whole corpus. Occurrences are found
*leftmost-longest*: scanning left to right, the longest glossary term that starts at the
current unit is taken and the scan resumes after it. A term nested inside a longer match
("pain" in "chest pain") is therefore not counted on its own, on either side: a hypothesis
that says only "pain" where the reference says "chest pain" misses "chest pain" and gets
nothing for "pain", which was not a reference occurrence.

**Term success** (:class:`TermSuccess`, for MT) follows the WMT 2023 shared task on machine
translation with terminologies (Semenov et al., 2023, "Findings of the WMT 2023 Shared Task on
Machine Translation with Terminologies", WMT 2023; task page wmt-terminology-task.github.io).
Each segment comes with a small dictionary of (source term, target term) pairs, and systems
translate in three modes: ``none`` (no dictionary given to the system), ``proper`` (the
terminology dictionary) and ``random`` (a dictionary of randomly chosen, correctly translated
phrases that are not terminology). The terminology success rate is the share of dictionary
entries whose target term appears in the system output. As the organisers did for their
``base`` runs (submissions README: the terms column of ``base`` files holds the proper
terminology), ``none`` output is scored against the *proper* dictionary (how many terms a
system gets right unaided); ``random`` output against the random one. The check is
hypothesis-side only: the task does not require a target term to appear in the reference
translation (the references argument of :meth:`TermSuccess.corpus_score` is the dictionary,
not a reference translation). WMT23 counted matches of the target terms in the output with
regular expressions (after lemmatising output and terms in the updated results, by fuzzy
matching at 90 % in the first paper); here an occurrence is an exact run of normalised words,
so inflected forms count as misses and scores are comparable only with this signature. The
organisers' scoring script for the 2025 edition counts an entry only when its source term
occurs in the source; WMT23 dictionaries were built so that it does (its words at least: the
task allows discontiguous spans), so that check is off by default and turned on by building
the metric with ``source_language``, when the sources are passed too.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from eval.metric import Metric, Score, check_lengths
from eval.normalize import CHARACTER_LANGUAGES, normalizer_for
from eval.readers import TermPair, TermSegment
from ner.phrases import PhraseMatcher

"""A dictionary entry: (source term, target term)."""

MODES = ("none", "proper", "random")
"""WMT23 terminology modes: no dictionary, the proper terminology, random phrase pairs."""

_ROUND_BRACKETS = str.maketrans({"(": " ", ")": " "})


def term_units(text: str, language: str) -> tuple[str, ...]:
    """The units terms are matched on: normalised words, or characters for zh/ja-like scripts."""
    normalized = normalizer_for(language)(text.translate(_ROUND_BRACKETS))
    if language in CHARACTER_LANGUAGES:
        return tuple(normalized.replace(" ", ""))
    return tuple(normalized.split())


_cached_term_units = lru_cache(maxsize=1 << 16)(term_units)


def _unit_name(language: str) -> str:
    return "char" if language in CHARACTER_LANGUAGES else "word"


def _norm_name(language: str) -> str:
    return normalizer_for(language).__name__


def count_occurrences(units: Sequence[str], term: Sequence[str]) -> int:
    """Non-overlapping occurrences of the unit run ``term`` in ``units``, left to right."""
    width = len(term)
    if width == 0:
        return 0
    first, rest = term[0], tuple(term[1:])
    count = index = 0
    while index <= len(units) - width:
        if units[index] == first and tuple(units[index + 1:index + width]) == rest:
            count += 1
            index += width
        else:
            index += 1
    return count


@dataclass(frozen=True, order=True)
class TermMatch:
    """Units ``start`` to ``end`` (end exclusive) of a normalised text hold glossary ``term``."""

    start: int
    end: int
    term: str


class TermMatcher:
    """A glossary compiled for fast leftmost-longest matching in one language.

    Terms are indexed by their first unit, longest first, so a text is scanned once and each
    position only tries the few terms that start with its unit. Terms that normalise to the
    same units are one term, reported under the first spelling given; terms that normalise
    to nothing are listed in :attr:`unmatchable` and never match.
    """

    def __init__(self, terms: Iterable[str], language: str) -> None:
        self.language = language
        canonical: dict[tuple[str, ...], str] = {}
        unmatchable: list[str] = []
        for term in terms:
            units = _cached_term_units(term, language)
            if not units:
                unmatchable.append(term)
            elif units not in canonical:
                canonical[units] = term
        index: dict[str, list[tuple[tuple[str, ...], str]]] = {}
        for units, term in canonical.items():
            index.setdefault(units[0], []).append((units, term))
        for candidates in index.values():
            candidates.sort(key=lambda entry: -len(entry[0]))
        self._index = index
        self._canonical = canonical
        self.terms: tuple[str, ...] = tuple(canonical.values())
        """The distinct terms, each under its first spelling."""
        self.unmatchable: tuple[str, ...] = tuple(unmatchable)

    @property
    def fingerprint(self) -> str:
        """Eight hex digits that change whenever the normalised glossary does."""
        keys = "\n".join(sorted(" ".join(units) for units in self._canonical))
        return hashlib.sha256(keys.encode("utf-8")).hexdigest()[:8]

    def units(self, text: str) -> tuple[str, ...]:
        """``text`` normalised and split into matching units."""
        return term_units(text, self.language)

    def find_in_units(self, units: Sequence[str]) -> list[TermMatch]:
        """Leftmost-longest, non-overlapping term matches in already split ``units``."""
        matches: list[TermMatch] = []
        position, length = 0, len(units)
        while position < length:
            for term_units_, term in self._index.get(units[position], ()):
                end = position + len(term_units_)
                if end <= length and tuple(units[position:end]) == term_units_:
                    matches.append(TermMatch(position, end, term))
                    position = end
                    break
            else:
                position += 1
        return matches

    def find(self, text: str) -> list[TermMatch]:
        """Leftmost-longest, non-overlapping term matches in ``text`` (positions in units)."""
        return self.find_in_units(self.units(text))

    def count(self, text: str) -> Counter[str]:
        """How often each term occurs in ``text``, leftmost-longest, non-overlapping."""
        return Counter(match.term for match in self.find(text))


def _by_frequency(counts: Counter[str], support: Counter[str]) -> dict[str, int]:
    """Non-zero ``counts`` sorted most first, then by ``support``, then alphabetically."""
    order = sorted((term for term, n in counts.items() if n > 0),
                   key=lambda term: (-counts[term], -support[term], term))
    return {term: counts[term] for term in order}


class TermRecall(Metric):
    """Medical-term recall: the share of glossary term occurrences in the references that
    the hypotheses reproduce (0–100), leftmost-longest matching, clipped per segment.

    Details: ``total`` reference occurrences, ``found`` (credited), ``misses`` (term → missed
    occurrences, most missed first) and ``support`` (term → reference occurrences, most
    frequent first).
    """

    name = "term-recall"
    higher_is_better = True

    def __init__(self, terms: Iterable[str], language: str) -> None:
        self.language = language
        self.matcher = TermMatcher(terms, language)
        if not self.matcher.terms:
            raise ValueError("the glossary has no term that survives normalisation")

    def signature(self) -> str:
        return (f"{self.name}|lang:{self.language}|norm:{_norm_name(self.language)}"
                f"|parens:kept|unit:{_unit_name(self.language)}|match:leftmost-longest"
                f"|clip:per-segment|terms:{len(self.matcher.terms)}"
                f"|glossary:{self.matcher.fingerprint}")

    def corpus_score(self, hypotheses: Sequence[str], references: Sequence[str]) -> Score:
        check_lengths(hypotheses, references)
        support: Counter[str] = Counter()
        found: Counter[str] = Counter()
        for hypothesis, reference in zip(hypotheses, references, strict=True):
            in_reference = self.matcher.count(reference)
            if not in_reference:
                continue
            in_hypothesis = (in_reference if hypothesis == reference
                             else self.matcher.count(hypothesis))
            for term, n in in_reference.items():
                support[term] += n
                found[term] += min(n, in_hypothesis[term])
        total = sum(support.values())
        if total == 0:
            raise ValueError("no glossary term occurs in the references: term recall is "
                             "undefined")
        hits = sum(found.values())
        misses = Counter({term: support[term] - found[term] for term in support})
        return self._score(100 * hits / total, total=total, found=hits,
                           misses=_by_frequency(misses, support),
                           support=_by_frequency(support, support))


class TermSuccess(Metric):
    """WMT23 terminology success rate (0–100): the share of dictionary entries whose target
    term appears in the output. See the module docstring for the modes and what is checked.

    Built with the ``mode`` (``none``, ``proper`` or ``random``) and the target ``language``;
    with ``source_language`` too, an entry counts only when its source term occurs in the
    segment's source, and :meth:`corpus_score` then needs ``sources``. Each entry is checked
    on its own: one occurrence can satisfy a term and a longer term containing it, and an
    entry is satisfied by one occurrence however often the target term is repeated.

    Details: ``total`` entries counted, ``found``, ``skipped`` (source term not in the
    source) and ``misses`` (target term → entries missed, most first).
    """

    name = "term-success"
    higher_is_better = True

    def __init__(self, mode: str, language: str, source_language: str | None = None,
                 lenient: bool = False) -> None:
        """``lenient``: a target term also counts when it occurs inflected or with other
        accents (the language's folding rules of :mod:`ner.folding`: "injury" for
        "injuries"), the "lemma-insensitive" success rate."""
        if mode not in MODES:
            raise ValueError(f"unknown terminology mode {mode!r}; choose from {MODES}")
        self.mode = mode
        self.language = language
        self.source_language = source_language
        self.lenient = lenient

    def signature(self) -> str:
        dictionary = "random" if self.mode == "random" else "proper"
        match = "|match:folded-inflections" if self.lenient else ""
        return (f"{self.name}|mode:{self.mode}|dict:{dictionary}|lang:{self.language}"
                f"|norm:{_norm_name(self.language)}|parens:kept|unit:{_unit_name(self.language)}"
                f"{match}|src-check:{self.source_language or 'no'}|ref-check:no")

    def _found(self, hypothesis: str, output: tuple[str, ...], term: str) -> bool:
        if count_occurrences(output, _cached_term_units(term, self.language)):
            return True
        return self.lenient and bool(_folded_matcher(self.language, term).find(hypothesis))

    def corpus_score(self, hypotheses: Sequence[str],
                     references: Sequence[Sequence[TermPair]],
                     sources: Sequence[str] | None = None) -> Score:
        """Score outputs against one dictionary (a list of (source, target) pairs) each."""
        check_lengths(hypotheses, references)
        if (sources is None) != (self.source_language is None):
            raise ValueError("pass sources exactly when the metric was built with "
                             "source_language (the source-side check)")
        if sources is not None:
            check_lengths(hypotheses, sources)
        support: Counter[str] = Counter()
        missed: Counter[str] = Counter()
        skipped = 0
        for index, (hypothesis, pairs) in enumerate(zip(hypotheses, references, strict=True)):
            if not pairs:
                continue
            output = term_units(hypothesis, self.language)
            source: tuple[str, ...] = ()
            if sources is not None and self.source_language is not None:
                source = term_units(sources[index], self.source_language)
            for pair in pairs:
                source_term, target_term = pair.source, pair.target
                if self.source_language is not None and not count_occurrences(
                        source, _cached_term_units(source_term, self.source_language)):
                    skipped += 1
                    continue
                support[target_term] += 1
                if not self._found(hypothesis, output, target_term):
                    missed[target_term] += 1
        total = sum(support.values())
        if total == 0:
            raise ValueError("no dictionary entry to check: term success is undefined")
        hits = total - sum(missed.values())
        return self._score(100 * hits / total, total=total, found=hits, skipped=skipped,
                           misses=_by_frequency(missed, support))


@lru_cache(maxsize=8192)
def _folded_matcher(language: str, term: str) -> PhraseMatcher[str]:
    matcher: PhraseMatcher[str] = PhraseMatcher(language, ignore_accents=True)
    matcher.add(term, term)
    return matcher


def dictionary(segment: TermSegment, mode: str) -> tuple[TermPair, ...]:
    """The dictionary an output of ``mode`` is scored against (``none`` → proper)."""
    if mode not in MODES:
        raise ValueError(f"unknown terminology mode {mode!r}; choose from {MODES}")
    return segment.terms_random if mode == "random" else segment.terms_proper
