"""Inline term annotation: the source tells the model which target term to use.

Dinu et al. (2019, "Training Neural Machine Translation to Apply Terminology Constraints",
ACL) train a model on sources in which some terms are followed by their required translation;
the model learns to copy (and inflect) the annotated target term into its output, with no
change to decoding. medstream uses their *append* form with two marker tokens instead of
source factors, so that any Marian, NLLB or M2M100 model can read it once the markers are in
its vocabulary::

    Die Hypertonie <t> hypertension </t> wurde behandelt.

A model trained this way (``recipes/mt``) says so in ``medstream_mt.json`` beside its weights
(``{"term_annotation": "append", "markers": ["<t>", "</t>"]}``); :func:`read_annotation` reads
it and the MT backends expose it as ``backend.annotation``. The :class:`~translate.translator.
Translator` then annotates each source with the session's term constraints before decoding
(see :class:`~translate.types.TranslateOptions` ``annotate`` for when), and hard mode still
forces whatever term the model left out: annotation makes the model's own output use the
terms (inflected and in a fitting place), forcing guarantees them.

Numbers are not annotated (the model copies them; hard mode forces the unit and decimal
separator), nor are constraints without a position in the source.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from speech.errors import InvalidOptionError
from translate.types import ConstraintOrigin, TermConstraint

METADATA_FILE = "medstream_mt.json"
"""What a model trained here says about itself, beside its weights (``recipes.mt.tiny_marian``
writes the same file)."""

DEFAULT_MARKERS = ("<t>", "</t>")
"""Opening and closing marker of an appended target term."""

AnnotationScheme = Literal["append"]
ANNOTATED_ORIGINS: frozenset[ConstraintOrigin] = frozenset({"glossary", "segment", "entity"})


@dataclass(frozen=True)
class AnnotatedSource:
    """A source text with target terms appended, and the constraints located in it."""

    text: str
    constraints: tuple[TermConstraint, ...]
    """The constraints given, in the same order, their spans moved into :attr:`text`; an
    annotated term's span covers its source words and the annotation after them."""
    annotated: tuple[int, ...]
    """Indices of the constraints that were annotated."""


def annotate_terms(text: str, constraints: Sequence[TermConstraint],
                   markers: Sequence[str] = DEFAULT_MARKERS) -> AnnotatedSource:
    """``text`` with ``open target close`` after each annotatable term.

    Annotated are the constraints that have a position, come from a glossary, the caller's
    term list or an entity (not numbers), and do not overlap one already chosen: of
    overlapping terms the leftmost wins, then the longest. The source words stay as written
    (their case included); the target is written as the constraint gives it.
    """
    opening, closing = _pair(markers)
    ranked = sorted((i for i, c in enumerate(constraints)
                     if c.start is not None and c.end is not None
                     and c.origin in ANNOTATED_ORIGINS),
                    key=lambda i: (constraints[i].start or 0, -_length(constraints[i])))
    chosen: list[int] = []
    reached = -1
    for index in ranked:
        constraint = constraints[index]
        assert constraint.start is not None and constraint.end is not None
        if constraint.start >= reached:
            chosen.append(index)
            reached = constraint.end
    insertions = [(_end(constraints[i]), f" {opening} {constraints[i].target.strip()} {closing}")
                  for i in chosen]
    pieces, cursor = [], 0
    for position, insertion in insertions:
        pieces += [text[cursor:position], insertion]
        cursor = position
    pieces.append(text[cursor:])

    def moved(position: int) -> int:
        return position + sum(len(insertion) for at, insertion in insertions if at <= position)

    located = tuple(c if c.start is None or c.end is None
                    else replace(c, start=moved(c.start), end=moved(c.end))
                    for c in constraints)
    return AnnotatedSource("".join(pieces), located, tuple(sorted(chosen)))


def _pair(markers: Sequence[str]) -> tuple[str, str]:
    if len(markers) != 2 or not all(m.strip() and " " not in m for m in markers):
        raise ValueError(f"term annotation needs two markers without spaces, not {markers!r}")
    return markers[0], markers[1]


def _length(constraint: TermConstraint) -> int:
    return _end(constraint) - (constraint.start or 0)


def _end(constraint: TermConstraint) -> int:
    assert constraint.end is not None
    return constraint.end


@dataclass(frozen=True)
class TermAnnotation:
    """How a model reads term annotations (from its ``medstream_mt.json``)."""

    scheme: AnnotationScheme = "append"
    markers: tuple[str, str] = DEFAULT_MARKERS

    def __post_init__(self) -> None:
        if self.scheme != "append":
            raise ValueError(f"unknown term annotation scheme {self.scheme!r} (known: append)")
        _pair(self.markers)

    def annotate(self, text: str, constraints: Sequence[TermConstraint]) -> AnnotatedSource:
        return annotate_terms(text, constraints, self.markers)

    def metadata(self) -> dict[str, Any]:
        """The keys of ``medstream_mt.json`` that announce it."""
        return {"term_annotation": self.scheme, "markers": list(self.markers)}


def read_annotation(model_dir: Path,
                    vocabulary: Callable[[], Mapping[str, int]] | None = None
                    ) -> TermAnnotation | None:
    """The term annotation a model directory announces, or None (no metadata file, or one
    without ``term_annotation``). With a function returning the model's ``vocabulary``
    (its tokenizer's ``get_vocab``), a marker missing from it is an error: the model could not
    read the annotations."""
    path = model_dir / METADATA_FILE
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        scheme = data.get("term_annotation") if isinstance(data, dict) else None
        if scheme is None:
            return None
        annotation = TermAnnotation(scheme, _pair(list(data.get("markers", DEFAULT_MARKERS))))
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError, TypeError) as error:
        raise InvalidOptionError(f"{path}: unreadable term annotation settings ({error}); "
                                 "fix or delete the file") from error
    if vocabulary is not None:
        known = vocabulary()
        missing = [m for m in annotation.markers if m not in known]
        if missing:
            raise InvalidOptionError(f"{path} announces term annotation with markers "
                                     f"{missing} that the model's vocabulary lacks; delete "
                                     "the term_annotation key or supply the matching model")
    return annotation
