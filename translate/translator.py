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
from dataclasses import dataclass, replace

from ner.schema import AttributeType, EntityType
from ner.types import Entity
from translate.annotation import TermAnnotation
from translate.backends.base import MTBackend
from translate.constraints import (
    TermChecker,
    consistent,
    glossary_constraints,
)
from translate.decoding import ConstrainedDecoder, Decoded, DecodeItem
from translate.glossary import Glossary
from translate.numbers import number_constraints
from translate.pieces import Span, join_pieces, split_text
from translate.tokenization import ModelTokenizer, SourceTokens
from translate.types import (
    GlossaryEntry,
    TermConstraint,
    TermMode,
    TermUse,
    TranslateOptions,
    Translation,
)

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
        are still checked and reported, never enforced. A text longer than the model reads
        (``backend.max_source_tokens``) is translated in pieces whose translations are joined
        (:func:`~translate.pieces.split_text`: its sentences, cut further at word boundaries
        where one is still too long); its term report covers every piece.
        """
        options = options or TranslateOptions()
        if terms is not None and len(terms) != len(texts):
            raise ValueError(f"{len(terms)} term lists for {len(texts)} texts")
        if entities is not None and len(entities) != len(texts):
            raise ValueError(f"{len(entities)} entity lists for {len(texts)} texts")
        results: list[Translation | None] = [None] * len(texts)
        items: list[DecodeItem] = []
        pieces: list[_Piece] = []
        sources = _SourceCache(self.backend.tokenizer, src_lang, tgt_lang)
        annotation = self._annotation(options)
        for index, text in enumerate(texts):
            constraints = tuple(self.terminology.constraints(
                text, src_lang, tgt_lang, terms[index] if terms is not None else (),
                entities[index] if entities is not None else ()))
            if not text.strip():
                results[index] = Translation("", text, src_lang, tgt_lang, (), options.terms)
                continue
            spans = self._spans(text, constraints, sources)
            for number, span in enumerate(spans):
                piece = _Piece(index, span, constraints if len(spans) == 1 else
                               self._piece_constraints(text, span, constraints, src_lang,
                                                       tgt_lang, number == len(spans) - 1))
                items.append(self._item(piece, text, tgt_lang, sources, annotation))
                pieces.append(piece)
        decoded = self.decoder.decode(items, options.terms, options) if items else []
        outcomes: dict[int, list[tuple[_Piece, Decoded]]] = {}
        for piece, outcome in zip(pieces, decoded, strict=True):
            outcomes.setdefault(piece.text, []).append((piece, outcome))
        for index, found in outcomes.items():
            results[index] = _joined(texts[index], found, src_lang, tgt_lang, options.terms)
        return [r for r in results if r is not None]

    def _spans(self, text: str, constraints: Sequence[TermConstraint],
               sources: _SourceCache) -> list[Span]:
        """The pieces ``text`` is translated in: the whole text when the model reads it in one
        go (or says nothing of its limit), else :func:`split_text`'s, never inside a term."""
        limit = self.backend.max_source_tokens
        if limit is None:
            return [(0, len(text))]
        keep = [(c.start, c.end) for c in constraints if c.start is not None and c.end is not None]
        return split_text(text, lambda piece: len(sources.get(piece).tokens) <= limit, keep)

    def _piece_constraints(self, text: str, span: Span,
                           constraints: Sequence[TermConstraint], src_lang: str, tgt_lang: str,
                           last: bool) -> tuple[TermConstraint, ...]:
        """The constraints of one piece of a text: those of the text that start in it (and,
        in the last piece, those without a position), moved into the piece, and what the
        glossary and the numbers find in the piece itself (the text's constraints name each
        term once, at its first occurrence)."""
        start, end = span
        moved = [c if c.start is None or c.end is None else
                 replace(c, start=c.start - start, end=min(c.end, end) - start)
                 for c in constraints
                 if (c.start is None and last) or (c.start is not None and start <= c.start < end)]
        return tuple(consistent([*moved, *self.terminology.constraints(text[start:end], src_lang,
                                                                       tgt_lang)]))

    def _item(self, piece: _Piece, text: str, tgt_lang: str, sources: _SourceCache,
              annotation: TermAnnotation | None) -> DecodeItem:
        """What the decoder gets for one piece: its tokens (annotated, when the model reads
        annotations and the annotated piece still fits) and its constraints."""
        start, end = piece.span
        source_text, constraints = text[start:end], piece.constraints
        if annotation is not None and constraints:
            annotated = annotation.annotate(source_text, constraints)
            tokens = sources.get(annotated.text, keep=False)
            limit = self.backend.max_source_tokens
            if limit is None or len(tokens.tokens) <= limit:
                return DecodeItem(tokens, tgt_lang, annotated.constraints)
        return DecodeItem(sources.get(source_text), tgt_lang, constraints)

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


class _SourceCache:
    """The source tokens of the texts and pieces of one call, each tokenised once (a piece
    is tokenised to see whether it fits, then decoded)."""

    def __init__(self, tokenizer: ModelTokenizer, src_lang: str, tgt_lang: str) -> None:
        self.tokenizer = tokenizer
        self.languages = (src_lang, tgt_lang)
        self._found: dict[str, SourceTokens] = {}

    def get(self, text: str, keep: bool = True) -> SourceTokens:
        found = self._found.get(text)
        if found is None:
            found = self.tokenizer.source(text, *self.languages)
            if keep:
                self._found[text] = found
        return found


@dataclass(frozen=True)
class _Piece:
    """Characters ``span`` of text number ``text`` and the constraints its translation must
    honour (their positions relative to the piece)."""

    text: int
    span: Span
    constraints: tuple[TermConstraint, ...]


def _joined(text: str, found: Sequence[tuple[_Piece, Decoded]], src_lang: str, tgt_lang: str,
            mode: TermMode) -> Translation:
    """The translation of ``text`` from those of its pieces: their outputs joined; a term
    reported once (in the order met), satisfied where every piece that has it honours it,
    forced where one had to; the score the mean of the pieces', weighted by output tokens."""
    output = join_pieces(text, [p.span for p, _ in found], [o.text for _, o in found], tgt_lang)
    checker = TermChecker(tgt_lang)
    uses: dict[tuple[object, ...], TermUse] = {}
    for piece, outcome in found:
        for index, c in enumerate(piece.constraints):
            use = TermUse(source=c.source, target=c.target,
                          satisfied=checker.satisfied(outcome.text, c.target),
                          lenient=checker.lenient(outcome.text, c.target),
                          forced=index in outcome.forced, origin=c.origin, code=c.code,
                          do_not_translate=c.do_not_translate)
            key = (c.source, c.target, c.origin, c.code, c.do_not_translate)
            known = uses.get(key)
            uses[key] = use if known is None else replace(
                known, satisfied=known.satisfied and use.satisfied,
                lenient=known.lenient and use.lenient, forced=known.forced or use.forced)
    weights = [max(1, len(o.hypothesis.tokens)) for _, o in found]
    score = found[0][1].hypothesis.score if len(found) == 1 else sum(
        w * o.hypothesis.score for w, (_, o) in zip(weights, found, strict=True)) / sum(weights)
    return Translation(output, text, src_lang, tgt_lang, tuple(uses.values()), mode, score)
