"""What translation takes and returns: term constraints, options, and the translation with its
per-term report."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal, get_args

TermMode = Literal["hard", "soft", "none"]
TERM_MODES: tuple[TermMode, ...] = get_args(TermMode)

RepairMode = Literal["replace", "continue"]
"""How hard mode puts missing terms in: ``replace`` the model's rendering in its output, or
also ``continue``: decode again after the last forced term (see :mod:`translate.decoding`)."""
REPAIR_MODES: tuple[RepairMode, ...] = get_args(RepairMode)

ConstraintOrigin = Literal["glossary", "segment", "entity", "number"]
"""Where a constraint came from: a glossary hit, the caller's own term list for the segment,
a recognised entity, or a number (with its unit) that must be copied."""


@dataclass(frozen=True)
class TermConstraint:
    """A term the translation must contain.

    ``source`` is the term as it stands in the source text, at characters ``start``..``end``
    (None when the caller gave the pair without a position and it could not be found);
    ``target`` the text the translation must contain.
    """

    source: str
    target: str
    start: int | None = None
    end: int | None = None
    origin: ConstraintOrigin = "glossary"
    code: str | None = None
    do_not_translate: bool = False

    def __post_init__(self) -> None:
        if not self.target.strip():
            raise ValueError(f"the constraint for {self.source!r} has an empty target")
        if (self.start is None) != (self.end is None):
            raise ValueError("give both start and end of a constraint, or neither")


@dataclass(frozen=True)
class TermUse:
    """How a translation honoured one constraint."""

    source: str
    target: str
    satisfied: bool
    """The target occurs in the translation as whole words, ignoring case."""
    lenient: bool
    """The target occurs ignoring case, accents and inflection (``satisfied`` implies it)."""
    forced: bool = False
    """Hard mode had to force the term into the output."""
    origin: ConstraintOrigin = "glossary"
    code: str | None = None
    do_not_translate: bool = False


@dataclass(frozen=True)
class TranslateOptions:
    """How to decode and how strictly to honour the terms."""

    terms: TermMode = "hard"
    beam_size: int = 4
    n_best: int = 8
    """Hypotheses reranked in soft mode."""
    max_length: int = 256
    """Most target tokens per sentence."""
    length_penalty: float = 1.0
    batch_size: int = 16
    repair: RepairMode = "replace"
    annotate: bool | None = None
    """Inline term annotation (:mod:`translate.annotation`), for models trained to read it:
    None annotates in soft and hard mode, True in every mode (in ``none`` mode: the model's
    own use of the annotated terms, nothing reranked or forced), False never. Models without
    annotation training are never annotated."""

    def __post_init__(self) -> None:
        if self.terms not in TERM_MODES:
            raise ValueError(f"terms mode must be one of {', '.join(TERM_MODES)}, "
                             f"not {self.terms!r}")
        if self.repair not in REPAIR_MODES:
            raise ValueError(f"repair must be one of {', '.join(REPAIR_MODES)}, not "
                             f"{self.repair!r}")
        if self.beam_size < 1 or self.n_best < 1 or self.max_length < 1 or self.batch_size < 1:
            raise ValueError("beam_size, n_best, max_length and batch_size must be at least 1")


@dataclass(frozen=True)
class Translation:
    """A translated text, with every term it had to honour and whether it did."""

    text: str
    source_text: str
    source_language: str
    target_language: str
    terms: tuple[TermUse, ...] = ()
    mode: TermMode = "none"
    score: float | None = None
    """The model's log-probability of ``text`` (length-normalised), when it reports one."""
    error: str | None = None
    """Why the text could not be translated (``text`` is then empty): the engine failed on
    it (:mod:`translate.failures`). None for a translation."""

    @classmethod
    def failed(cls, source_text: str, source_language: str, target_language: str,
               mode: TermMode, error: str) -> Translation:
        """The note left where a text could not be translated."""
        return cls("", source_text, source_language, target_language, (), mode, None, error)

    @property
    def all_terms_satisfied(self) -> bool:
        return all(term.satisfied for term in self.terms)

    def to_dict(self) -> dict[str, Any]:
        """Every field, ``error`` only where there is one."""
        data = asdict(self)
        data["terms"] = [asdict(t) for t in self.terms]
        if self.error is None:
            del data["error"]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Translation:
        """The inverse of :meth:`to_dict` (KeyError or TypeError on a malformed record)."""
        return cls(**{**data, "terms": tuple(TermUse(**t) for t in data.get("terms", ()))})


@dataclass(frozen=True)
class GlossaryEntry:
    """A term and its required translation, with whatever the glossary says about it."""

    source: str
    target: str
    src_lang: str | None = None
    tgt_lang: str | None = None
    provider: str | None = None
    pos: str | None = None
    description: str | None = None
    code: str | None = None
    """A concept id (ICD-10, SNOMED CT, RxNorm …), or the TBX concept entry's id."""
    do_not_translate: bool = False
    """The term is copied unchanged (then ``target == source``)."""

    def __post_init__(self) -> None:
        if not self.source.strip() or not self.target.strip():
            raise ValueError("a glossary entry needs a source and a target term")
        if self.do_not_translate and self.target != self.source:
            raise ValueError(f"do-not-translate entry {self.source!r} has another target "
                             f"{self.target!r}")

    def applies_to(self, src_lang: str | None, tgt_lang: str | None) -> bool:
        """Whether the entry is for this language pair (an entry without languages is for
        every pair; ``es`` matches ``es-419``)."""
        return (language_matches(self.src_lang, src_lang)
                and language_matches(self.tgt_lang, tgt_lang))


def language_matches(code: str | None, wanted: str | None) -> bool:
    """``wanted`` is None, equal to ``code`` or its primary subtag (``es`` for ``es-419``)."""
    if wanted is None or code is None:
        return True
    code, wanted = code.casefold(), wanted.casefold()
    return code == wanted or code.startswith(wanted + "-")
