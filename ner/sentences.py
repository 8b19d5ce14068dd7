"""Raw text cut into sentences (character spans), the unit the tagger was trained on.

The tagger learnt from corpus sentences of at most 128 sub-tokens. Handed a whole abstract or
clinical note in one piece it sees contexts of several hundred sub-tokens it never saw in
training, and its boundaries suffer (on NCBI-disease devel abstracts as written, strict F1 77.6
whole against 83.2 sentence by sentence, same model). So :class:`~ner.tagger.TransformerTagger`
tags raw text sentence by sentence, and a long text gives the same entities as its sentences
handed over one at a time.

A sentence ends at a line break, or after ``.``, ``!`` or ``?`` (and any closing quotes or
brackets) followed by white space and a capital letter, a digit or an opening bracket, except
after a few abbreviations that take a full stop ("et al.", "e.g.", "Dr.", "Fig."), an initial
("J. Smith") or a one-letter word. Lower-case text (a live transcript) is cut only at line
breaks and at a mark before a capital, which keeps an unpunctuated stream in one piece: the
windows of :mod:`ner.windows` then bound what the model sees.
"""

from __future__ import annotations

import re

_END = re.compile(r"[.!?]+[\"'\u201d\u2019)\]]*(?=\s+[\"'\u201c\u2018(\[]?[A-Z0-9])|\n")
_ABBREVIATIONS = frozenset({
    "al", "e.g", "i.e", "eg", "ie", "cf", "vs", "viz", "etc", "approx", "ca", "dr", "mr", "mrs",
    "ms", "prof", "st", "fig", "figs", "no", "nos", "vol", "ref", "refs", "tab", "resp", "sp",
    "spp", "var", "inc", "ltd", "co", "jr", "sr", "mt",
})


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """The ``(start, end)`` character spans of the sentences of ``text``, in order, without
    surrounding white space; a text of white space only has none. Consecutive spans never
    overlap, and nothing but white space lies between them."""
    spans: list[tuple[int, int]] = []
    start = 0
    for match in _END.finditer(text):
        if match.group() != "\n" and _abbreviation_before(text, match.start()):
            continue
        _add(text, start, match.end(), spans)
        start = match.end()
    _add(text, start, len(text), spans)
    return spans


def _abbreviation_before(text: str, mark: int) -> bool:
    """Whether the full stop at ``mark`` closes an abbreviation, an initial or a one-letter
    word rather than a sentence."""
    if text[mark] != ".":
        return False
    word = re.search(r"[\w.]*$", text[:mark])
    token = word.group() if word else ""
    return len(token) == 1 or token.lower() in _ABBREVIATIONS


def _add(text: str, start: int, end: int, spans: list[tuple[int, int]]) -> None:
    piece = text[start:end]
    stripped = piece.strip()
    if stripped:
        first = start + len(piece) - len(piece.lstrip())
        spans.append((first, first + len(stripped)))
