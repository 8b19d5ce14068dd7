"""The entities every recognizer returns: character spans of a text with a schema type."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, get_args

from ner.schema import AttributeType, EntityType

EntitySource = Literal["lexicon", "model", "abbreviation"]
"""Who found an entity: a term list, the tagger, or an abbreviation definition in the text
(:mod:`ner.abbreviations`)."""
ENTITY_SOURCES: tuple[EntitySource, ...] = get_args(EntitySource)


def _check_span(what: str, start: int, end: int, text: str, score: float) -> None:
    if not 0 <= start < end:
        raise ValueError(f"{what} offsets {start}:{end} are not 0 <= start < end")
    if len(text) != end - start:
        raise ValueError(f"{what} text {text!r} has {len(text)} characters but its offsets "
                         f"{start}:{end} span {end - start}")
    if not 0.0 <= score <= 1.0:
        raise ValueError(f"{what} score {score} is outside 0..1")


@dataclass(frozen=True)
class Attribute:
    """A medication attribute ("500 mg", "by mouth") at ``text[start:end]`` of the segment."""

    type: AttributeType
    start: int
    end: int
    text: str
    score: float = 1.0

    def __post_init__(self) -> None:
        _check_span("attribute", self.start, self.end, self.text, self.score)


@dataclass(frozen=True)
class Entity:
    """An entity at ``text[start:end]`` of the segment text (character offsets, end exclusive).

    ``score`` is the recognizer's confidence (0..1; 1 for an exact lexicon match), ``code`` a
    concept id from a term list (ICD-10, RxNorm-like), ``negated`` the NEGATION trait and
    ``attributes`` the dosage, strength, … linked to a MEDICATION.

    In a conversation (:mod:`ner.dialogue`), ``asked`` marks an entity the clinician said in a
    question ("Any chest pain?"): asked about, not a finding. ``negated_by`` is the id of the
    turn (segment or live final) whose answer ("No") negated it; it implies ``negated``.
    """

    start: int
    end: int
    text: str
    type: EntityType
    score: float
    source: EntitySource
    code: str | None = None
    negated: bool = False
    attributes: tuple[Attribute, ...] = ()
    asked: bool = False
    negated_by: int | str | None = None

    def __post_init__(self) -> None:
        _check_span("entity", self.start, self.end, self.text, self.score)
        if self.negated_by is not None and (isinstance(self.negated_by, bool)
                                            or not isinstance(self.negated_by, int | str)):
            raise TypeError(f"entity negated_by must be a turn id (int or str), not "
                            f"{self.negated_by!r}")
        if self.negated_by is not None and not self.negated:
            raise ValueError(f"entity {self.text!r} has negated_by={self.negated_by!r} "
                             f"but is not negated")
        if self.source not in ENTITY_SOURCES:
            raise ValueError(f"entity source {self.source!r} is not one of {ENTITY_SOURCES}")
        if self.attributes and self.type is not EntityType.MEDICATION:
            raise ValueError(f"only a MEDICATION has attributes, not a {self.type.value}")

    def to_dict(self) -> dict[str, Any]:
        """The entity as JSON: offsets, text, type, score and source; code, negation,
        attributes, ``asked`` and ``negated_by`` only where present."""
        record: dict[str, Any] = {"start": self.start, "end": self.end, "text": self.text,
                                  "type": self.type.value, "score": round(self.score, 4),
                                  "source": self.source}
        if self.code:
            record["code"] = self.code
        if self.negated:
            record["negated"] = True
        if self.attributes:
            record["attributes"] = [{"type": a.type.value, "start": a.start, "end": a.end,
                                     "text": a.text} for a in self.attributes]
        if self.asked:
            record["asked"] = True
        if self.negated_by is not None:
            record["negated_by"] = self.negated_by
        return record

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> Entity:
        """The inverse of :meth:`to_dict`; raises ValueError, KeyError or TypeError on a
        malformed record."""
        attributes = tuple(Attribute(AttributeType(a["type"]), a["start"], a["end"], a["text"])
                           for a in record.get("attributes", ()))
        return cls(start=record["start"], end=record["end"], text=record["text"],
                   type=EntityType(record["type"]), score=record["score"],
                   source=record["source"], code=record.get("code"),
                   negated=record.get("negated", False), attributes=attributes,
                   asked=record.get("asked", False), negated_by=record.get("negated_by"))
