"""IOB2 tags (``O``, ``B-X``, ``I-X``) and the entity spans they stand for.

Tags are read the way conlleval and seqeval (default mode) read them: an ``I-X`` that does not
continue an ``X`` span starts a new one.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Span:
    """Tokens ``start`` to ``end`` (end exclusive) of one sentence, of entity type ``type``."""

    start: int
    end: int
    type: str


def check_tag(tag: str) -> bool:
    """Whether ``tag`` is ``O``, ``B-<type>`` or ``I-<type>``."""
    if tag == "O":
        return True
    prefix, dash, kind = tag.partition("-")
    return prefix in {"B", "I"} and dash == "-" and bool(kind)


def spans_from_iob2(tags: Sequence[str]) -> list[Span]:
    """The entity spans of one sentence's IOB2 tags (``O``, ``B-X``, ``I-X``)."""
    spans: list[Span] = []
    start: int | None = None
    current = ""
    for index, tag in enumerate([*tags, "O"]):
        prefix, _, kind = tag.partition("-")
        continues = prefix == "I" and kind == current and start is not None
        if start is not None and not continues:
            spans.append(Span(start, index, current))
            start = None
        if prefix == "B" or (prefix == "I" and not continues):
            start, current = index, kind
    return spans


def iob2_from_spans(length: int, spans: Iterable[Span]) -> list[str]:
    """The IOB2 tags of a sentence of ``length`` words with the (non-overlapping) ``spans``;
    the inverse of :func:`spans_from_iob2`."""
    tags = ["O"] * length
    for span in spans:
        tags[span.start:span.end] = [f"I-{span.type}"] * (span.end - span.start)
        tags[span.start] = f"B-{span.type}"
    return tags
