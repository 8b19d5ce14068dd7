"""Glossary terms, numbers and entities honoured by an engine that gives only text.

:class:`EngineTranslator` is to a :class:`~translate.backends.text_engine.TextEngine` what
:class:`translate.translator.Translator` is to a token-level backend, behind the same
:class:`translate.protocol.TextTranslator` interface: the same constraints (the session's
:class:`~translate.translator.Terminology`, the caller's term pairs, entities, numbers with
units), the same modes and the same per-term report (:class:`~translate.types.TermUse`).

Every text is translated as it is first (the *free* output). A constraint the free output does
not honour is put in by edits (:mod:`translate.term_masking`), tried in the order of
:attr:`TermStrategy.hard` (or :attr:`TermStrategy.soft`), a later one only for the texts the
earlier ones left a term missing in; an edit's output is kept when it honours more constraints
than the output so far:

* ``rendering``: translate the source term alone and replace that rendering in the free
  output by the target term: the engine's sentence otherwise stays as it was;
* ``aligned``: translate the source again with the missing terms masked by placeholders; the
  words of the free output that the masked output has in place of a placeholder (a word-level
  diff) are the term's rendering in context, replaced by the target in the free output;
* ``masking``: the masked output itself, with the targets put in for the placeholders (and
  any term whose placeholder was lost by its rendering).

**none** reports the free output. **soft** makes the edits and keeps the free output where it
already honours every constraint. **hard** then writes any term still missing in brackets
before the closing punctuation, so that every consistent constraint is in the output.
``TermUse.forced`` marks a term the output holds because an edit put it there (in soft mode
too: an engine without scores gives no n-best list to pick a term from).

**Choice.** On the first half of the TICO-19 en→pt dev rows (1,465 sentences, 2,271 glossary
constraints of the TICO-19 en–pt term list, 58.8 % honoured by the free output at chrF 72.68),
hard mode honoured 100 % in every order, at chrF 71.39 with ``rendering`` then ``aligned``
(the default), 71.10 adding ``masking``, 71.08 with ``rendering`` then ``masking``, 70.69
with ``masking`` alone; soft mode with the default honoured 91.9 % at chrF 71.44. Placeholders
``X1``, ``[1]`` and ``T1X`` scored within 0.06 chrF of each other. Re-translating a masked
sentence loses more of the engine's wording than editing the free output; and part of the
glossary is European Portuguese where the references are Brazilian, so every term put in
costs chrF against them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from ner.types import Entity
from translate.backends.text_engine import TextEngine, check_direction
from translate.constraints import TermChecker
from translate.term_masking import (
    DEFAULT_PLACEHOLDER,
    aligned_span,
    insert_term,
    mask,
    replace_rendering,
    replace_span,
    unmask,
)
from translate.translator import Terminology
from translate.types import TermConstraint, TermUse, TranslateOptions, Translation

Edit = Literal["rendering", "aligned", "masking"]
EDITS: tuple[Edit, ...] = ("rendering", "aligned", "masking")
RENDERING_CACHE = 4096
"""Source terms whose lone translation is remembered, per translator."""


@dataclass(frozen=True)
class TermStrategy:
    """How missing terms are put in (module docstring); the defaults were chosen on the first
    half of the TICO-19 en→pt dev rows."""

    placeholder: str = DEFAULT_PLACEHOLDER
    hard: tuple[Edit, ...] = ("rendering", "aligned")
    soft: tuple[Edit, ...] = ("rendering", "aligned")

    def __post_init__(self) -> None:
        if "{n}" not in self.placeholder:
            raise ValueError(f"a placeholder style needs '{{n}}', not {self.placeholder!r}")
        for edits in (self.hard, self.soft):
            if not edits or any(e not in EDITS for e in edits):
                raise ValueError(f"edits must be among {', '.join(EDITS)}, not {edits}")


@dataclass
class _Item:
    """One text on its way: its constraints, current output and the constraints put in."""

    source: str
    constraints: tuple[TermConstraint, ...]
    text: str = ""
    forced: set[int] = field(default_factory=set)


class EngineTranslator:
    """A text engine and the terminology of a session."""

    def __init__(self, engine: TextEngine, terminology: Terminology | None = None,
                 strategy: TermStrategy | None = None) -> None:
        self.engine = engine
        self.terminology = terminology or Terminology()
        self.strategy = strategy or TermStrategy()
        self._renderings: dict[tuple[str, str, str], str] = {}

    @property
    def identifier(self) -> str:
        return self.engine.identifier

    def translate(self, texts: Sequence[str], src_lang: str, tgt_lang: str,
                  options: TranslateOptions | None = None,
                  terms: Sequence[Sequence[TermConstraint]] | None = None,
                  entities: Sequence[Sequence[Entity]] | None = None) -> list[Translation]:
        """Translate ``texts`` (same contract as :meth:`translate.translator.Translator.translate`;
        beam and length options do not apply to a text engine)."""
        options = options or TranslateOptions()
        if terms is not None and len(terms) != len(texts):
            raise ValueError(f"{len(terms)} term lists for {len(texts)} texts")
        if entities is not None and len(entities) != len(texts):
            raise ValueError(f"{len(entities)} entity lists for {len(texts)} texts")
        check_direction(self.engine, src_lang, tgt_lang)
        items = [_Item(text, tuple(self.terminology.constraints(
            text, src_lang, tgt_lang, terms[i] if terms is not None else (),
            entities[i] if entities is not None else ()))) for i, text in enumerate(texts)]
        work = [item for item in items if item.source.strip()]
        for item, output in zip(work, self.engine.translate(
                [item.source for item in work], src_lang, tgt_lang), strict=True):
            item.text = output
        checker = TermChecker(tgt_lang)
        if options.terms != "none":
            edits = self.strategy.hard if options.terms == "hard" else self.strategy.soft
            self._put_terms(work, edits, checker, src_lang, tgt_lang)
        if options.terms == "hard":
            for item in work:
                for index in _missing(item, item.text, checker):
                    item.text = insert_term(item.text, item.constraints[index].target)
                    item.forced.add(index)
        return [Translation(item.text, item.source, src_lang, tgt_lang,
                            _report(item, checker), options.terms) for item in items]

    def _put_terms(self, items: Sequence[_Item], edits: Sequence[Edit], checker: TermChecker,
                   src_lang: str, tgt_lang: str) -> None:
        """Each item's output after the edits, the one honouring most constraints kept."""
        masked: dict[str, str] = {}
        for edit in edits:
            pending = [item for item in items if _missing(item, item.text, checker)]
            if not pending:
                return
            if edit == "rendering":
                made = self._rendered(pending, checker, src_lang, tgt_lang)
            else:
                made = self._masked(pending, checker, src_lang, tgt_lang, masked,
                                    aligned=edit == "aligned")
            for item, (text, put) in zip(pending, made, strict=True):
                if len(_missing(item, text, checker)) < len(_missing(item, item.text, checker)):
                    # A masked output is a new translation: only its own edits count.
                    item.forced = put if edit == "masking" else item.forced | put
                    item.text = text

    def _rendered(self, items: Sequence[_Item], checker: TermChecker, src_lang: str,
                  tgt_lang: str, outputs: Sequence[str] | None = None
                  ) -> list[tuple[str, set[int]]]:
        """Each item's output (or ``outputs``) with the renderings of its missing terms
        replaced by their targets."""
        texts = list(outputs) if outputs is not None else [item.text for item in items]
        missing = [_missing(item, text, checker) for item, text in zip(items, texts, strict=True)]
        renderings = self._render({item.constraints[i].source for item, indices
                                   in zip(items, missing, strict=True) for i in indices},
                                  src_lang, tgt_lang)
        results = []
        for item, text, indices in zip(items, texts, missing, strict=True):
            put = set()
            for index in indices:
                constraint = item.constraints[index]
                edited = replace_rendering(text, renderings[constraint.source], constraint.target,
                                           checker.language)
                if edited is not None and checker.satisfied(edited, constraint.target):
                    text = edited
                    put.add(index)
            results.append((text, put))
        return results

    def _masked(self, items: Sequence[_Item], checker: TermChecker, src_lang: str,
                tgt_lang: str, done: dict[str, str], aligned: bool
                ) -> list[tuple[str, set[int]]]:
        """Each item translated again with its missing terms masked (``done``: masked
        translations made so far in this call). ``aligned``: the free output with the words
        the masked one has in place of each placeholder replaced by the target; otherwise the
        masked output with the targets put in for the placeholders. Terms still missing then
        go in by their renderings."""
        masks = [mask(item.source, item.constraints, _missing(item, item.text, checker),
                      self.strategy.placeholder) for item in items]
        new = sorted({m.text for m in masks if m.placeholders} - done.keys())
        done.update(zip(new, self.engine.translate(new, src_lang, tgt_lang), strict=True))
        restored = []
        for item, masked in zip(items, masks, strict=True):
            output = done.get(masked.text, item.text)
            targets = {i: item.constraints[i].target for i in masked.placeholders}
            restored.append(_aligned(item.text, output, masked.placeholders, targets) if aligned
                            else unmask(output, masked.placeholders, targets))
        rendered = self._rendered(items, checker, src_lang, tgt_lang,
                                  [text for text, _ in restored])
        return [(text, put | more) for (_, put), (text, more)
                in zip(restored, rendered, strict=True)]

    def _render(self, sources: set[str], src_lang: str, tgt_lang: str) -> dict[str, str]:
        """The engine's translation of each source term alone (cached)."""
        keys = {source: (src_lang, tgt_lang, source) for source in sources}
        new = sorted(source for source, key in keys.items() if key not in self._renderings)
        if new:
            if len(self._renderings) + len(new) > RENDERING_CACHE:
                self._renderings.clear()
            for source, rendering in zip(new, self.engine.translate(new, src_lang, tgt_lang),
                                         strict=True):
                self._renderings[keys[source]] = rendering
        return {source: self._renderings[key] for source, key in keys.items()}


def _aligned(free: str, output: str, placeholders: Mapping[int, str],
             targets: Mapping[int, str]) -> tuple[str, set[int]]:
    """``free`` with each term's aligned rendering (:func:`aligned_span`) replaced, right to
    left; spans that overlap one already replaced are left."""
    spans = sorted(((span, index) for index, mark in placeholders.items()
                    if (span := aligned_span(free, output, mark)) is not None), reverse=True)
    put: set[int] = set()
    limit = len(free) + 1
    for (start, end), index in spans:
        if end <= limit:
            free = replace_span(free, start, end, targets[index])
            put.add(index)
            limit = start
    return free, put


def _missing(item: _Item, text: str, checker: TermChecker) -> list[int]:
    return [i for i, c in enumerate(item.constraints) if not checker.satisfied(text, c.target)]


def _report(item: _Item, checker: TermChecker) -> tuple[TermUse, ...]:
    return tuple(TermUse(source=c.source, target=c.target,
                         satisfied=checker.satisfied(item.text, c.target),
                         lenient=checker.lenient(item.text, c.target), forced=i in item.forced,
                         origin=c.origin, code=c.code, do_not_translate=c.do_not_translate)
                 for i, c in enumerate(item.constraints))

