"""Text edits that put glossary terms into the output of an engine that gives only text.

Three ways, which :class:`translate.engine_translator.EngineTranslator` combines:

* **masking**: each term's span in the source is replaced by a placeholder the engine copies
  unchanged (:func:`mask`); after translation the placeholder is replaced by the target term
  (:func:`unmask`). On the first half of the TICO-19 en→pt dev rows the tiny Bergamot model
  copied ``X1``-style placeholders 99.5 % of the time (``[1]`` and ``9901`` as often, ``T1X``
  and ``TERM1`` a little less, ``__T1__`` 91 %; ``<1>``, ``{1}``, ``#1``, ``@@1`` never).
* **the term's own rendering**: the source term is translated alone; where that rendering
  occurs in the free translation it is replaced by the target term (:func:`replace_rendering`),
  which leaves the rest of the engine's sentence untouched; the rendering is also found
  inflected or with other accents (the target language's folding rules);
* **alignment**: the words of the free translation that the masked translation has in place
  of the placeholder (a word-level diff of the two, :func:`aligned_span`) are the term's
  rendering in context; they are replaced by the target, again leaving the rest untouched.

A target that replaces a capitalised word or opens a sentence is capitalised in turn (the
checkers ignore case; readers do not).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher
from functools import lru_cache

from ner.phrases import PhraseMatcher
from translate.types import TermConstraint

DEFAULT_PLACEHOLDER = "X{n}"
"""How the ``n``-th masked term (from 1) is written in the source."""

MAX_ALIGNED_WORDS = 6
"""Longest rendering (in words) an alignment may replace: a longer one means the two
translations went different ways, not that the term was rendered differently."""

_SENTENCE_END = re.compile(r"[.!?:;]\s*$")
_TOKEN = re.compile(r"\w+|[^\w\s]")
_TRAILING = " \t\n.!?;:,"


@dataclass(frozen=True)
class Masked:
    """A source text with some terms replaced by placeholders."""

    text: str
    placeholders: Mapping[int, str]
    """Constraint index → its placeholder."""


def placeholder(style: str, number: int) -> str:
    """The placeholder of the ``number``-th masked term (from 1) in ``style`` (``X{n}``)."""
    return style.format(n=number)


def mask(text: str, constraints: Sequence[TermConstraint], indices: Sequence[int],
         style: str = DEFAULT_PLACEHOLDER) -> Masked:
    """``text`` with the located constraints among ``indices`` masked. A constraint without a
    source position is left alone, and so is everything when a placeholder already occurs in
    ``text`` (its copy could not be told from the mask's)."""
    located = sorted((i for i in indices if constraints[i].start is not None),
                     key=lambda i: constraints[i].start or 0)
    marks = {index: placeholder(style, number) for number, index in enumerate(located, 1)}
    if any(_pattern(mark).search(text) for mark in marks.values()):
        return Masked(text, {})
    for index in sorted(located, key=lambda i: constraints[i].start or 0, reverse=True):
        constraint = constraints[index]
        assert constraint.start is not None and constraint.end is not None
        text = text[:constraint.start] + marks[index] + text[constraint.end:]
    return Masked(text, marks)


def unmask(output: str, placeholders: Mapping[int, str],
           targets: Mapping[int, str]) -> tuple[str, set[int]]:
    """``output`` with each placeholder the engine copied replaced by its target (the first
    copy; the others go); the indices restored."""
    restored = set()
    for index, mark in placeholders.items():
        pattern = _pattern(mark)
        found = pattern.search(output)
        if found is None:
            continue
        target = _cased(targets[index], sentence_start=_opens_sentence(output, found.start()))
        output = output[:found.start()] + target + output[found.end():]
        output = _drop_copies(output, pattern, found.start() + len(target))
        restored.add(index)
    return output, restored


def replace_rendering(output: str, rendering: str, target: str,
                      language: str | None = None) -> str | None:
    """``output`` with the first whole-word occurrence of ``rendering`` (ignoring case; with
    ``language``, also inflected or with other accents) replaced by ``target``; None when it
    does not occur."""
    rendering = rendering.strip(_TRAILING)
    if not rendering:
        return None
    found = re.search(rf"(?<!\w){re.escape(rendering)}(?!\w)", output, re.IGNORECASE)
    if found is not None:
        return replace_span(output, found.start(), found.end(), target)
    hits = _lenient(language, rendering).find(output) if language else []
    return replace_span(output, hits[0].start, hits[0].end, target) if hits else None


def replace_span(output: str, start: int, end: int, target: str) -> str:
    """``output[start:end]`` replaced by ``target``, capitalised where the span was."""
    return output[:start] + _cased(target, output[start:start + 1].isupper()) + output[end:]


def aligned_span(free: str, masked_output: str, mark: str) -> tuple[int, int] | None:
    """The characters of ``free`` that ``masked_output`` (a translation of the same source
    with a term masked by ``mark``) has in place of ``mark``: a word-level diff of the two,
    where ``mark`` alone replaces one to :data:`MAX_ALIGNED_WORDS` words. None otherwise."""
    free_tokens = list(_TOKEN.finditer(free))
    masked = [token for piece in _pattern(mark).split(masked_output)
              for token in (*_TOKEN.findall(piece), None)][:-1]
    if masked.count(None) != 1:
        return None
    at = masked.index(None)
    matcher = SequenceMatcher(None, [t.group().casefold() for t in free_tokens],
                              [t.casefold() if t is not None else "\0" for t in masked],
                              autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if j1 <= at < j2:
            if tag != "replace" or j2 - j1 != 1 or not 0 < i2 - i1 <= MAX_ALIGNED_WORDS:
                return None
            return free_tokens[i1].start(), free_tokens[i2 - 1].end()
    return None


def insert_term(output: str, target: str) -> str:
    """The last resort of hard mode: ``target`` in brackets before the closing punctuation."""
    body = output.rstrip(_TRAILING)
    tail = output[len(body):]
    if not body:
        return target + tail
    return f"{body} ({target}){tail}"


@lru_cache(maxsize=4096)
def _lenient(language: str, term: str) -> PhraseMatcher[str]:
    matcher: PhraseMatcher[str] = PhraseMatcher(language, ignore_accents=True)
    matcher.add(term, term)
    return matcher


def _pattern(mark: str) -> re.Pattern[str]:
    return re.compile(rf"(?<![\w\[]){re.escape(mark)}(?![\w\]])"
                      if mark[:1].isalnum() else re.escape(mark))


def _drop_copies(output: str, pattern: re.Pattern[str], after: int) -> str:
    """Further copies of a placeholder (rare) are removed with the space before them."""
    head, tail = output[:after], output[after:]
    tail = re.sub(rf"\s?{pattern.pattern}", "", tail)
    return head + tail


def _opens_sentence(text: str, position: int) -> bool:
    before = text[:position].rstrip()
    return not before or _SENTENCE_END.search(before) is not None


def _cased(target: str, sentence_start: bool) -> str:
    if sentence_start and target[:1].islower():
        return target[:1].upper() + target[1:]
    return target
