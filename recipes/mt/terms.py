"""Training data for terminology (Dinu et al. 2019): find the term pairs each training pair
holds, and annotate some of them in the source.

A term pair counts for a training pair when its source term is found in the source (the
glossary's tolerant matching: case, accents, inflection) and its target term occurs in the
reference as whole words, ignoring case — Dinu et al.'s filter, which keeps only annotations
the reference actually honours. Term pairs come from

* the segment's own dictionaries (WMT 2023 terminology ``terms_proper`` / ``terms_random``);
* glossary matches (any TSV/CSV/TBX glossary; entries of the reverse direction are turned
  round, so the TICO-19 en→xx list serves de→en).

Overlapping matches are resolved as at serving time (:func:`translate.constraints.consistent`)
and each remaining term is annotated with probability ``probability``, so the model also sees
unannotated terms and plain sentences. Alignment-based term discovery (Dinu et al.'s second
source) is not implemented.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from recipes.mt.tiny_marian import ParallelPair
from translate.annotation import annotate_terms
from translate.constraints import TermChecker, consistent, glossary_constraints, pair_constraints
from translate.glossary import Glossary, read_glossary
from translate.types import GlossaryEntry, TermConstraint


@dataclass(frozen=True)
class AnnotatedPair:
    """A training pair with the terms found in it and the source the model is trained on."""

    pair: ParallelPair
    source: str
    """The source with the chosen terms annotated (the plain source when none is)."""
    terms: tuple[TermConstraint, ...]
    """Every consistent term pair found (positions in the plain source)."""
    annotated: tuple[TermConstraint, ...]


def oriented_glossary(paths: Sequence[Path], src_lang: str, tgt_lang: str) -> Glossary:
    """The entries of ``paths`` for ``src_lang`` → ``tgt_lang``, those written for the
    opposite direction turned round; earlier entries win on equal source terms."""
    entries: list[GlossaryEntry] = []
    for path in paths:
        for entry in read_glossary(path):
            if entry.src_lang and entry.tgt_lang and entry.applies_to(tgt_lang, src_lang) \
                    and not entry.applies_to(src_lang, tgt_lang):
                entry = GlossaryEntry(entry.target, entry.source, entry.tgt_lang,
                                      entry.src_lang, entry.provider, entry.pos,
                                      entry.description, entry.code, entry.do_not_translate)
            entries.append(entry)
    return Glossary(entries, src_lang, tgt_lang)


def find_terms(pair: ParallelPair, segment_terms: Sequence[tuple[str, str]],
               glossary: Glossary | None, src_lang: str,
               tgt_lang: str) -> tuple[TermConstraint, ...]:
    """The term pairs of ``pair``: located in its source, honoured by its reference."""
    found = [c for c in pair_constraints(pair.source, segment_terms, src_lang)
             if c.start is not None]
    if glossary is not None:
        found += glossary_constraints(pair.source, glossary)
    checker = TermChecker(tgt_lang)
    return tuple(consistent([c for c in found if checker.satisfied(pair.target, c.target)]))


def annotate_pairs(pairs: Sequence[ParallelPair],
                   segment_terms: Mapping[str, Sequence[tuple[str, str]]],
                   glossary: Glossary | None, probability: float, markers: Sequence[str],
                   src_lang: str, tgt_lang: str, seed: int) -> list[AnnotatedPair]:
    """Each pair with its terms found and each term annotated with ``probability``;
    ``segment_terms`` maps a pair's ``origin`` to its own dictionary."""
    rng = random.Random(seed)
    result = []
    for pair in pairs:
        terms = find_terms(pair, segment_terms.get(pair.origin, ()), glossary, src_lang,
                           tgt_lang)
        chosen = tuple(t for t in terms if rng.random() < probability)
        source = annotate_terms(pair.source, chosen, markers).text if chosen else pair.source
        result.append(AnnotatedPair(pair, source, terms, chosen))
    return result
