"""``medstream eval mt --model``: translate a parallel test set here, under a glossary, and
report how the glossary's terms came out.

The test set can be read the other way round (:func:`reversed_segments`, with the glossary
reversed likewise by :func:`reversed_entries`), so one en→pt set also measures pt→en. Numbers
are not added as constraints, so the term figures measure the glossary alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from eval.metric import Score
from eval.readers import ParallelSegment, TermPair
from eval.report import Section
from eval.terms import TermSuccess
from translate.types import GlossaryEntry, TermMode, TranslateOptions, Translation

BATCH = 64
"""Segments per call to the translator (progress and memory, not results)."""


def reversed_segments(segments: Sequence[ParallelSegment]) -> list[ParallelSegment]:
    """The test set read from its references to its sources."""
    return [ParallelSegment(s.id, s.tgt_lang, s.src_lang, s.ref, s.src) for s in segments]


def reversed_entries(entries: Sequence[GlossaryEntry]) -> list[GlossaryEntry]:
    """The glossary read from its targets to its sources."""
    return [replace(e, source=e.target, target=e.source, src_lang=e.tgt_lang,
                    tgt_lang=e.src_lang) for e in entries]


def translate_segments(segments: Sequence[ParallelSegment], model: str,
                       glossary: Sequence[GlossaryEntry], mode: TermMode,
                       device: str = "cpu") -> tuple[list[Translation], str]:
    """Each segment translated by ``model`` with ``glossary`` honoured in ``mode``; the
    model's identifier."""
    from translate.catalog import load_mt_model
    from translate.protocol import make_translator
    from translate.translator import Terminology

    translator = make_translator(load_mt_model(model, device=device),
                                 Terminology(glossary, numbers=False))
    directions = sorted({(s.src_lang, s.tgt_lang) for s in segments})
    if len(directions) != 1:
        raise ValueError(f"one translation direction per test set, not {directions}")
    (source, target), = directions
    options = TranslateOptions(terms=mode)
    found: list[Translation] = []
    for start in range(0, len(segments), BATCH):
        found += translator.translate([s.src for s in segments[start:start + BATCH]], source,
                                      target, options)
    return found, translator.identifier


def glossary_terms_section(translations: Sequence[Translation], mode: TermMode) -> Section:
    """Term success of the translations against the glossary terms found in their sources
    (strict and lenient, scored by :class:`eval.terms.TermSuccess`), and how many of them
    the translator had to put in itself."""
    if not translations:
        raise ValueError("no translations to score")
    target = translations[0].target_language
    section = Section("glossary-terms", f"Glossary terms ({mode} mode)")
    hypotheses = [t.text for t in translations]
    pairs = [tuple(TermPair(u.source, u.target) for u in t.terms) for t in translations]
    if not any(pairs):
        section.skipped["term-success"] = "no glossary term occurs in the sources"
        return section
    for lenient in (False, True):
        section.add("all", TermSuccess("proper", target, lenient=lenient)
                    .corpus_score(hypotheses, pairs))
    uses = [u for t in translations for u in t.terms]
    forced = sum(u.forced for u in uses)
    section.add("all", Score("terms-put-in", 100 * forced / len(uses),
                             f"terms-put-in|mode:{mode}|by:translator-report",
                             higher_is_better=False, details={"total": len(uses),
                                                              "put_in": forced}))
    section.notes.append("Terms: the consistent glossary constraints the translator found in "
                         "each source (one per distinct target). terms-put-in: the share the "
                         "translator wrote in itself (forced) rather than the model choosing.")
    section.items = [{"source": t.source_text, "hypothesis": t.text,
                      "terms": [{"target": u.target, "satisfied": u.satisfied,
                                 "forced": u.forced} for u in t.terms]}
                     for t in translations if t.terms]
    return section
