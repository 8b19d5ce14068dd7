"""Glossaries: the terms a translation must use, read from TSV, CSV or TBX, matched in a source.

**Entries.** A :class:`GlossaryEntry` pairs a source term with the target term a translation
must use, optionally for one language pair, with a concept code and a *do-not-translate* flag
(brand names, names of people and places: the term passes through unchanged, so its target is
its source).

**Files.** :func:`read_glossary` picks the reader by extension:

* ``.tsv`` / ``.txt`` (tab-separated) and ``.csv`` (comma-separated, RFC 4180 quoting): the
  term columns are recognised in a header (case-insensitively): ``src_term``/``tgt_term``
  (the TICO-19 list), ``source``/``target``, ``source_term``/``target_term``, ``src``/``tgt``
  or ``term``/``translation``; a header of the two language codes asked for (``en<TAB>fr``)
  also counts. Optional columns: ``src_lang``, ``tgt_lang``, ``code`` (or ``concept``,
  ``concept_id``), ``dnt`` (or ``do_not_translate``: ``1``/``true``/``yes``/``x``),
  ``provider``, ``pos``, ``description``. Without a recognised header every line is data and
  the first two columns are the source and target terms. A do-not-translate row may leave its
  target empty.
* ``.tbx`` (ISO 30042): :mod:`translate.tbx`.

Rows of another language pair than the one asked for are left out (``es`` also matches
``es-419``); a row without languages applies to every pair.

**Matching.** A :class:`Glossary` holds the entries of one direction, from one or more files
(the first file's entry wins when two give the same source term), compiled into a
:class:`ner.phrases.PhraseMatcher`: case-, accent- and inflection-tolerant (the source
language's rules from ``ner/lexicons/inflections.yaml``), whole words, leftmost-longest, one
pass over the text.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ner.phrases import PhraseMatcher
from speech.datafiles import text_lines
from speech.errors import DataFileError
from translate.tbx import read_tbx
from translate.types import GlossaryEntry, language_matches

_TERM_HEADERS = (("src_term", "tgt_term"), ("source", "target"),
                 ("source_term", "target_term"), ("src", "tgt"), ("term", "translation"))
_CODE_COLUMNS = ("code", "concept", "concept_id")
_DNT_COLUMNS = ("dnt", "do_not_translate")
_TRUE = frozenset({"1", "true", "yes", "y", "x"})
_FALSE = frozenset({"", "0", "false", "no", "n"})


def read_glossary(path: str | Path, src_lang: str | None = None,
                  tgt_lang: str | None = None) -> list[GlossaryEntry]:
    """The entries of a TSV, CSV or TBX glossary, optionally only those of one direction.

    Raises :class:`~speech.errors.DataFileError` naming the file (and line) when it cannot be
    read or is malformed.
    """
    file = Path(path)
    if file.suffix.casefold() == ".tbx":
        return [e for e in read_tbx(file, src_lang, tgt_lang) if e.applies_to(src_lang, tgt_lang)]
    return read_glossary_table(file, src_lang, tgt_lang)


def _read_rows(file: Path) -> list[list[str]]:
    try:
        lines = text_lines(file)
    except OSError as error:
        raise DataFileError(file, None, f"cannot read the glossary ({error.strerror})") from error
    if file.suffix.casefold() == ".csv":
        return list(csv.reader(io.StringIO("\n".join(lines), newline="")))
    return [line.split("\t") for line in lines]


@dataclass(frozen=True)
class _TableLayout:
    """Where a glossary table's fields are: its header (empty when it has none), the source
    and target term columns, and the 1-based line of its first entry."""

    header: list[str]
    source: int
    target: int
    first_line: int

    @property
    def columns(self) -> dict[str, int]:
        """Column index by name (the last of equal names, as a dict of the header keeps)."""
        return {name: index for index, name in enumerate(self.header)}

    @classmethod
    def of(cls, first_row: list[str], src_lang: str | None, tgt_lang: str | None
           ) -> _TableLayout:
        header = [name.strip().casefold() for name in first_row]
        pair = next(((header.index(s), header.index(t)) for s, t in _TERM_HEADERS
                     if s in header and t in header), None)
        if pair is None and src_lang and tgt_lang and header[:2] == [src_lang.casefold(),
                                                                     tgt_lang.casefold()]:
            pair = (0, 1)
        if pair is None:
            return cls([], 0, 1, 1)
        return cls(header, *pair, 2)

    def optional(self, fields: list[str], *names: str) -> str | None:
        """The first of the columns ``names`` the table has, stripped; None when empty."""
        columns = self.columns
        index = next((columns[n] for n in names if n in columns), None)
        value = fields[index].strip() if index is not None else ""
        return value or None


def read_glossary_table(path: str | Path, src_lang: str | None = None,
                        tgt_lang: str | None = None) -> list[GlossaryEntry]:
    """The term pairs of a TSV (CSV for a ``.csv`` name) glossary (see the module docstring).

    ``src_lang``/``tgt_lang`` keep the rows of that direction. A file without language columns
    is taken to be in the direction asked for, and its entries get those languages. Blank
    lines are skipped; an empty term is an error.
    """
    file = Path(path)
    rows = _read_rows(file)
    if not rows:
        return []
    layout = _TableLayout.of(rows[0], src_lang, tgt_lang)
    entries = []
    for number, fields in enumerate(rows[layout.first_line - 1:], start=layout.first_line):
        if any(field.strip() for field in fields):
            entry = _table_entry(file, number, fields, layout, src_lang, tgt_lang)
            if entry is not None:
                entries.append(entry)
    return entries


def _table_entry(file: Path, number: int, fields: list[str], layout: _TableLayout,
                 src_lang: str | None, tgt_lang: str | None) -> GlossaryEntry | None:
    """The entry of one non-blank row; None when it is for another direction."""
    if layout.header and len(fields) != len(layout.header):
        raise DataFileError(file, number, f"{len(fields)} field(s), but the header has "
                                          f"{len(layout.header)}")
    if len(fields) < 2:
        raise DataFileError(file, number, "expected at least two columns (source term, "
                                          "target term)")
    dnt_value = (layout.optional(fields, *_DNT_COLUMNS) or "").casefold()
    if dnt_value not in _TRUE | _FALSE:
        raise DataFileError(file, number, f"do-not-translate value {dnt_value!r} is not "
                                          "one of 1/0, true/false, yes/no, x")
    dnt = dnt_value in _TRUE
    source, target = fields[layout.source].strip(), fields[layout.target].strip()
    if dnt and not target:
        target = source
    if not source or not target:
        raise DataFileError(file, number, f"empty {'source' if not source else 'target'}"
                                          " term")
    if dnt and target != source:
        raise DataFileError(file, number, f"do-not-translate term {source!r} has another "
                                          f"target {target!r}")
    row_src = layout.optional(fields, "src_lang") if "src_lang" in layout.header else src_lang
    row_tgt = layout.optional(fields, "tgt_lang") if "tgt_lang" in layout.header else tgt_lang
    if not (language_matches(row_src, src_lang) and language_matches(row_tgt, tgt_lang)):
        return None
    return GlossaryEntry(
        source=source, target=target, src_lang=row_src, tgt_lang=row_tgt,
        provider=layout.optional(fields, "provider"), pos=layout.optional(fields, "pos"),
        description=layout.optional(fields, "description"),
        code=layout.optional(fields, *_CODE_COLUMNS), do_not_translate=dnt)


@dataclass(frozen=True)
class GlossaryHit:
    """Source characters ``start`` to ``end`` (end exclusive) hold ``entry``'s source term."""

    start: int
    end: int
    entry: GlossaryEntry


class Glossary:
    """The entries of one direction, compiled for matching in source texts."""

    def __init__(self, entries: Iterable[GlossaryEntry], src_lang: str, tgt_lang: str, *,
                 ignore_accents: bool = False, inflections: bool = True) -> None:
        """Keep the entries for ``src_lang`` → ``tgt_lang``; on equal source terms (after
        folding) the first entry wins."""
        self.src_lang = src_lang
        self.tgt_lang = tgt_lang
        self.entries = tuple(e for e in entries if e.applies_to(src_lang, tgt_lang))
        self._matcher: PhraseMatcher[GlossaryEntry] = PhraseMatcher(
            src_lang, ignore_accents=ignore_accents, inflections=inflections)
        self.unmatchable = tuple(e for e in self.entries if not self._matcher.add(e.source, e))

    @classmethod
    def from_files(cls, paths: Sequence[str | Path], src_lang: str,
                   tgt_lang: str) -> Glossary:
        """Several glossary files for one direction; earlier files take precedence."""
        return cls([e for path in paths for e in read_glossary(path, src_lang, tgt_lang)],
                   src_lang, tgt_lang)

    def __len__(self) -> int:
        return self._matcher.size

    def find(self, text: str) -> list[GlossaryHit]:
        """The glossary terms in a source text, leftmost-longest, non-overlapping."""
        return [GlossaryHit(m.start, m.end, m.payload) for m in self._matcher.find(text)]
