"""Term lists for the lexicon matcher: typed terms with optional concept codes.

A term list is a TSV (or, for a ``.csv`` name, CSV) file with the columns ``term, type[,
code]``: the term as written, an :class:`~ner.schema.EntityType` name (case-insensitive) and
optionally a concept code (ICD-10, RxNorm …). Blank lines and lines starting with ``#`` are
skipped, and a first row whose first field is ``term`` is a header. Glossaries (the TICO-19
TSV read by :func:`translate.glossary.read_glossary`) carry no type, so their terms get one type
chosen by the caller (:func:`terms_from_glossary`).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from ner.folding import primary_language
from ner.schema import EntityType
from speech.errors import DataFileError

GlossarySide = Literal["source", "target"]


class GlossaryPair(Protocol):
    """A bilingual glossary entry as the lexicon reads it (``translate.glossary.GlossaryEntry``
    is one; the NER stage sits below translation and only needs these four fields)."""

    @property
    def source(self) -> str: ...
    @property
    def target(self) -> str: ...
    @property
    def src_lang(self) -> str | None: ...
    @property
    def tgt_lang(self) -> str | None: ...


@dataclass(frozen=True)
class Term:
    """A term of a list: its text, the entity type it marks and an optional concept code."""

    text: str
    type: EntityType
    code: str | None = None

    def __post_init__(self) -> None:
        if not self.text.strip():
            raise ValueError("a term must not be empty")


def load_term_list(path: str | Path) -> list[Term]:
    """The terms of a ``term, type[, code]`` TSV/CSV file (see the module docstring).

    Raises :class:`~ner.datafiles.DataFileError` naming the file and line for a missing file,
    a row with fewer than two or more than three columns, an empty term or an unknown type.
    """
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8-sig")
    except OSError as error:
        raise DataFileError(file, None, f"cannot read the term list ({error.strerror})") from error
    terms: list[Term] = []
    for line, fields in _rows(text.splitlines(), csv_format=file.suffix.casefold() == ".csv"):
        fields = [field.strip() for field in fields]
        while len(fields) > 2 and not fields[-1]:
            fields.pop()
        if not terms and fields[0].casefold() == "term":
            continue
        if len(fields) not in (2, 3):
            raise DataFileError(file, line, f"expected the columns term, type[, code] but found "
                                            f"{len(fields)} field(s): {fields!r}")
        if not fields[0]:
            raise DataFileError(file, line, "the term is empty")
        terms.append(Term(fields[0], _entity_type(file, line, fields[1]),
                          (fields[2] or None) if len(fields) == 3 else None))
    return terms


def terms_from_glossary(entries: Iterable[GlossaryPair], entity_type: EntityType,
                        side: GlossarySide = "target") -> tuple[str | None, list[Term]]:
    """The ``side`` terms of glossary ``entries`` as terms of ``entity_type``, with their language.

    The language is the entries' ``tgt_lang`` (``src_lang`` for the source side), reduced to
    its primary subtag; None when the glossary names none. Raises ValueError when the entries
    mix languages on that side (read one direction with ``read_glossary(path, src, tgt)``).
    """
    languages: set[str] = set()
    terms: list[Term] = []
    for entry in entries:
        text, language = ((entry.target, entry.tgt_lang) if side == "target"
                          else (entry.source, entry.src_lang))
        if language:
            languages.add(primary_language(language))
        terms.append(Term(text, entity_type))
    if len(languages) > 1:
        raise ValueError(f"the glossary's {side} terms are in several languages "
                         f"({', '.join(sorted(languages))}); a lexicon holds one language: "
                         f"read one direction with read_glossary(path, src_lang, tgt_lang)")
    return (languages.pop() if languages else None), terms


def _rows(lines: Sequence[str], csv_format: bool) -> Iterator[tuple[int, list[str]]]:
    """(1-based line, fields) of the non-blank, non-comment lines."""
    for number, line in enumerate(lines, start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        yield number, (next(csv.reader([line])) if csv_format else line.split("\t"))


def _entity_type(file: Path, line: int, name: str) -> EntityType:
    try:
        return EntityType[name.strip().upper()]
    except KeyError:
        known = ", ".join(EntityType.__members__)
        raise DataFileError(file, line, f"unknown entity type {name!r} (known: {known})") from None
