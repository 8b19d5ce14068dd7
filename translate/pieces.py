"""Texts longer than a model can read, cut into pieces it can, and their translations joined.

An MT model reads a bounded number of source tokens (its position embeddings); a longer text
makes the engine fail or silently drop its end. A text that does not fit is cut into its
**sentences**, and a sentence that still does not fit into **pieces at word boundaries** (at
characters only when one word alone does not fit), each as long as fits. Every non-space
character of the text is in exactly one piece, in order; the translations of the pieces are
joined in the same order (:func:`join_pieces`).

Whether a piece fits is the caller's to say (``fits``), so that the cut works for any engine:
:class:`translate.translator.Translator` counts the model's own tokens against
``MTBackend.max_source_tokens``; an engine that only takes text in and gives text out can use
:func:`translate_in_pieces` with its own count (e.g. words or characters) and limit.

Sentence ends are ``.``, ``!``, ``?`` and ``…`` (with closing quotes or brackets) before a
space and a word that does not start in lower case, the CJK full stops, and line breaks; a
period after a single letter or a common abbreviation ("Dr.", "e.g.") ends nothing. A cut
never falls inside a ``keep`` span (a glossary term, a name), unless that span alone is too
long to fit.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from ner.folding import primary_language

Span = tuple[int, int]
"""Characters ``[start, end)`` of a text."""

Fits = Callable[[str], bool]
"""Whether the engine can read a text in one go."""

_SENTENCE_END = re.compile(r"[.!?…]+[\"'”’»)\]]*(?=\s+[^\s])|[。！？]+[」』”)]*|\n+")
_ABBREVIATION = re.compile(
    r"(?:^|[\s(])(?:\w|dr|dra|mr|mrs|ms|prof|sr|sra|st|vs|no|nr|ca|approx|fig|etc|e\.g|i\.e"
    r"|z\.b|bzw|usw|cf)\.$", re.IGNORECASE)

NO_SPACE_LANGUAGES = frozenset({"ja", "zh", "th", "lo", "km", "my", "bo"})
"""Languages written without spaces between words: their pieces are joined with nothing."""


def sentence_spans(text: str, keep: Sequence[Span] = ()) -> list[Span]:
    """The sentences of ``text``, in order, without the whitespace around them; a sentence end
    inside a ``keep`` span is not one."""
    spans: list[Span] = []
    start = 0
    for match in _SENTENCE_END.finditer(text):
        end = match.end()
        if match.group()[0] in ".!?…" and not _ends_sentence(text, match.start(), end):
            continue
        if _inside(end, keep):
            continue
        spans += _trimmed(text, start, end)
        start = end
    spans += _trimmed(text, start, len(text))
    return spans


def split_text(text: str, fits: Fits, keep: Sequence[Span] = ()) -> list[Span]:
    """``text`` as one piece when it fits, else as its sentences, a sentence that does not
    fit cut at word boundaries into the longest pieces that do (see the module's docstring).
    An empty or blank text is one piece."""
    if not text.strip() or fits(text):
        return [(0, len(text))]
    pieces: list[Span] = []
    for start, end in sentence_spans(text, keep):
        if fits(text[start:end]):
            pieces.append((start, end))
        else:
            pieces += word_pieces(text, start, end, fits, keep)
    return pieces


def word_pieces(text: str, start: int, end: int, fits: Fits,
                keep: Sequence[Span] = ()) -> list[Span]:
    """``text[start:end]`` cut into the longest pieces that fit, at the ends of words (not
    inside ``keep`` spans); a word too long on its own is cut at the most characters that fit
    (at least one, so that every cut makes progress)."""
    pieces: list[Span] = []
    position = start
    while position < end:
        if fits(text[position:end]):
            pieces.append((position, end))
            break
        ends = [i for i in range(position + 1, end)
                if not text[i - 1].isspace() and text[i].isspace() and not _inside(i, keep)]
        cut = _longest(text, position, ends, fits)
        if cut is None:
            cut = _longest(text, position, range(position + 2, end), fits)
            cut = cut if cut is not None else position + 1
        pieces.append((position, cut))
        position = cut
        while position < end and text[position].isspace():
            position += 1
    return pieces


def join_pieces(text: str, spans: Sequence[Span], outputs: Sequence[str],
                target_language: str) -> str:
    """The outputs of the pieces ``spans`` of ``text`` as one text: separated by a line break
    where the source had one between them, else by a space (nothing in a language written
    without spaces); empty outputs are left out."""
    if len(spans) != len(outputs):
        raise ValueError(f"{len(outputs)} outputs for {len(spans)} pieces")
    joined = ""
    spaced = primary_language(target_language) not in NO_SPACE_LANGUAGES
    previous_end: int | None = None
    for (start, end), output in zip(spans, outputs, strict=True):
        output = output.strip()
        if output:
            if joined:
                gap = text[previous_end:start] if previous_end is not None else ""
                joined += "\n" if "\n" in gap else " " if spaced else ""
            joined += output
        previous_end = end
    return joined


def translate_in_pieces(texts: Sequence[str], translate: Callable[[list[str]], Sequence[str]],
                        fits: Fits, target_language: str) -> list[str]:
    """Translate ``texts`` with an engine that takes texts and returns their translations
    (``translate``, called once with every piece of every text), cutting each text that does
    not ``fit`` with :func:`split_text` and joining its pieces' translations."""
    spans = [split_text(text, fits) for text in texts]
    sources = [text[start:end] for text, pieces in zip(texts, spans, strict=True)
               for start, end in pieces]
    outputs = list(translate(sources)) if sources else []
    if len(outputs) != len(sources):
        raise ValueError(f"the engine returned {len(outputs)} translations for "
                         f"{len(sources)} texts")
    joined: list[str] = []
    at = 0
    for text, pieces in zip(texts, spans, strict=True):
        joined.append(join_pieces(text, pieces, outputs[at:at + len(pieces)], target_language))
        at += len(pieces)
    return joined


def within(limit: int, count: Callable[[str], int]) -> Fits:
    """A ``fits`` that holds when ``count(text)`` is at most ``limit``."""
    if limit < 1:
        raise ValueError(f"a piece limit must be at least 1, not {limit}")
    return lambda text: count(text) <= limit


def _longest(text: str, start: int, candidates: Sequence[int], fits: Fits) -> int | None:
    """The last of the ascending ``candidates`` ends of a piece from ``start`` whose piece
    ``fits`` (binary search: a longer piece never fits where a shorter one does not)."""
    low, high, found = 0, len(candidates) - 1, None
    while low <= high:
        middle = (low + high) // 2
        if fits(text[start:candidates[middle]]):
            found, low = candidates[middle], middle + 1
        else:
            high = middle - 1
    return found


def _ends_sentence(text: str, mark: int, end: int) -> bool:
    """The marks ``text[mark:end]`` end a sentence: the next word does not start in lower
    case, and the mark is not the period of a single letter or a common abbreviation."""
    following = text[end:].lstrip()[:1]
    if following.islower():
        return False
    return not (text[mark] == "." and _ABBREVIATION.search(text[max(0, mark - 8):mark + 1]))


def _inside(position: int, keep: Sequence[Span]) -> bool:
    return any(start < position < end for start, end in keep)


def _trimmed(text: str, start: int, end: int) -> list[Span]:
    """``[start, end)`` without its leading and trailing whitespace (nothing when blank)."""
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return [(start, end)] if start < end else []
