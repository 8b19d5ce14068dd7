"""Translate texts with a glossary honoured: the entry point of the ``translate`` package.

A :class:`Translator` holds one backend and the session's :class:`Terminology`. For each text it
gathers the constraints (glossary hits, the caller's own term pairs, numbers with their units,
and what recognised entities add: names passed through, doses copied), keeps a consistent set
(:func:`translate.constraints.consistent`), decodes in the chosen mode
(:mod:`translate.decoding`) and reports, per term, whether the output honours it. A model
trained to read inline term annotations (:mod:`translate.annotation`) gets them in its source
first, as ``TranslateOptions.annotate`` says.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ner.schema import AttributeType, EntityType
from ner.types import Entity
from translate.annotation import TermAnnotation
from translate.backends.base import MTBackend
from translate.constraints import (
    TermChecker,
    consistent,
    glossary_constraints,
)
from translate.decoding import ConstrainedDecoder, DecodeItem
from translate.glossary import Glossary
from translate.numbers import number_constraints
from translate.types import GlossaryEntry, TermConstraint, TermUse, TranslateOptions, Translation

DOSE_ATTRIBUTES = frozenset({AttributeType.STRENGTH, AttributeType.DOSAGE})


class Terminology:
    """What a session's translations must honour: its glossaries, and numbers with units."""

    def __init__(self, glossary: Iterable[GlossaryEntry] = (), *, numbers: bool = True) -> None:
        """``glossary``: entries of every file of the session, earlier ones first (they win
        on equal source terms); ``numbers``: copy every number and unit of the source."""
        self.entries = tuple(glossary)
        self.numbers = numbers
        self._glossaries: dict[tuple[str, str], Glossary] = {}

    def glossary(self, src_lang: str, tgt_lang: str) -> Glossary:
        """The session's entries for one direction, compiled once."""
        key = (src_lang, tgt_lang)
        if key not in self._glossaries:
            self._glossaries[key] = Glossary(self.entries, src_lang, tgt_lang)
        return self._glossaries[key]

    def constraints(self, text: str, src_lang: str, tgt_lang: str,
                    extra: Sequence[TermConstraint] = (),
                    entities: Sequence[Entity] = ()) -> list[TermConstraint]:
        """The consistent constraints a translation of ``text`` must honour: ``extra`` ones
        first, then glossary hits, what ``entities`` add, and numbers."""
        found = [*extra, *glossary_constraints(text, self.glossary(src_lang, tgt_lang))]
        found += entity_constraints(text, entities, src_lang, tgt_lang)
        if self.numbers:
            found += number_constraints(text, src_lang, tgt_lang)
        return consistent(found)


class Translator:
    """One MT backend and the terminology of a session."""

    def __init__(self, backend: MTBackend, terminology: Terminology | None = None) -> None:
        self.backend = backend
        self.terminology = terminology or Terminology()
        self.decoder = ConstrainedDecoder(backend)

    @property
    def identifier(self) -> str:
        return self.backend.identifier

    def translate(self, texts: Sequence[str], src_lang: str, tgt_lang: str,
                  options: TranslateOptions | None = None,
                  terms: Sequence[Sequence[TermConstraint]] | None = None,
                  entities: Sequence[Sequence[Entity]] | None = None) -> list[Translation]:
        """Translate ``texts`` from ``src_lang`` to ``tgt_lang``.

        ``terms[i]`` are constraints of text ``i`` beyond the glossary (e.g. a test set's own
        term pairs); ``entities[i]`` its recognised entities. In mode ``none`` the constraints
        are still checked and reported, never enforced.
        """
        options = options or TranslateOptions()
        if terms is not None and len(terms) != len(texts):
            raise ValueError(f"{len(terms)} term lists for {len(texts)} texts")
        if entities is not None and len(entities) != len(texts):
            raise ValueError(f"{len(entities)} entity lists for {len(texts)} texts")
        results: list[Translation | None] = [None] * len(texts)
        items: list[DecodeItem] = []
        positions: list[int] = []
        tokenizer = self.backend.tokenizer
        annotation = self._annotation(options)
        for index, text in enumerate(texts):
            constraints = tuple(self.terminology.constraints(
                text, src_lang, tgt_lang, terms[index] if terms is not None else (),
                entities[index] if entities is not None else ()))
            if not text.strip():
                results[index] = Translation("", text, src_lang, tgt_lang, (), options.terms)
                continue
            source_text = text
            if annotation is not None and constraints:
                annotated = annotation.annotate(text, constraints)
                source_text, constraints = annotated.text, annotated.constraints
            source = tokenizer.source(source_text, src_lang, tgt_lang)
            items.append(DecodeItem(source, tgt_lang, constraints))
            positions.append(index)
        mode = options.terms
        decoded = self.decoder.decode(items, mode, options) if items else []
        checker = TermChecker(tgt_lang)
        for index, item, outcome in zip(positions, items, decoded, strict=True):
            uses = tuple(
                TermUse(source=c.source, target=c.target,
                        satisfied=checker.satisfied(outcome.text, c.target),
                        lenient=checker.lenient(outcome.text, c.target),
                        forced=i in outcome.forced, origin=c.origin, code=c.code,
                        do_not_translate=c.do_not_translate)
                for i, c in enumerate(item.constraints))
            results[index] = Translation(outcome.text, texts[index], src_lang, tgt_lang, uses,
                                         mode, outcome.hypothesis.score)
        return [r for r in results if r is not None]

    def _annotation(self, options: TranslateOptions) -> TermAnnotation | None:
        """The annotation to apply: the model's, when ``options.annotate`` asks for it."""
        wanted = options.terms != "none" if options.annotate is None else options.annotate
        return self.backend.annotation if wanted else None


def entity_constraints(text: str, entities: Sequence[Entity], src_lang: str,
                       tgt_lang: str) -> list[TermConstraint]:
    """What recognised entities add to the constraints: personal health information passes
    through unchanged, and the numbers of doses and strengths are copied with their units."""
    found: list[TermConstraint] = []
    for entity in entities:
        if entity.type is EntityType.PROTECTED_HEALTH_INFORMATION:
            found.append(TermConstraint(entity.text, entity.text, entity.start, entity.end,
                                        origin="entity", do_not_translate=True))
        for attribute in entity.attributes:
            if attribute.type in DOSE_ATTRIBUTES:
                for number in number_constraints(text, src_lang, tgt_lang, attribute.start,
                                                 attribute.end):
                    found.append(TermConstraint(number.source, number.target, number.start,
                                                number.end, origin="entity"))
    return found
