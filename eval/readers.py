"""Readers (and two writers) for the evaluation data: manifests, CoNLL, parallel text, terms.

Every reader returns frozen dataclasses and raises :class:`DataFileError`, naming the file
and the 1-based line, on malformed input: a missing key or column, a value of the wrong type,
a line that is not JSON, a bad IOB2 tag. Files are read as UTF-8 (a byte-order mark is
ignored). Lines are split on ``\\n`` only (``\\r\\n`` is accepted), never on the other Unicode
line separators, which ``json.dumps(..., ensure_ascii=False)`` leaves unescaped in strings.

TSV files follow the shared data's convention: one header line, tab-separated, no quoting
(exactly ``csv.DictReader(f, delimiter="\\t", quoting=csv.QUOTE_NONE)``; a field never contains
a tab or a newline).

* :func:`read_manifest` / :func:`write_manifest`: NeMo-style JSONL speech manifests.
* CoNLL NER files are read by :mod:`ner.conll`.
* :func:`read_parallel_tsv`: ``id, src_lang, tgt_lang, src, ref`` parallel text. Rows whose
  source or reference is empty are left out and listed in :attr:`ParallelCorpus.skipped`.
* :func:`read_terminology_jsonl`: the WMT23 terminology shared-task format.

Glossaries are read by :mod:`translate.glossary`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, overload

from speech.datafiles import json_lines, text_lines, type_name
from speech.errors import DataFileError

# --------------------------------------------------------------------------- shared helpers


class JsonFields:
    """Typed access to one JSON object's keys, with errors that name the file and line."""

    def __init__(self, obj: dict[str, Any], path: Path, line: int | None,
                 what: str = "") -> None:
        self.obj, self.path, self.line = obj, path, line
        self.what = f" in {what}" if what else ""

    def error(self, reason: str) -> DataFileError:
        return DataFileError(self.path, self.line, reason + self.what)

    def _get(self, key: str) -> Any:
        if key not in self.obj:
            raise self.error(f"missing required key '{key}'")
        return self.obj[key]

    def string(self, key: str) -> str:
        value = self._get(key)
        if not isinstance(value, str):
            raise self.error(f"'{key}' must be a string, not {type_name(value)}")
        return value

    def optional_string(self, key: str) -> str | None:
        return None if self.obj.get(key) is None else self.string(key)

    def integer(self, key: str) -> int:
        value = self._get(key)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(f"'{key}' must be an integer, not {type_name(value)}")
        return value

    def number(self, key: str) -> float:
        value = self._get(key)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.error(f"'{key}' must be a number, not {type_name(value)}")
        if not math.isfinite(value):
            raise self.error(f"'{key}' must be a finite number, not {value}")
        return float(value)

    def boolean(self, key: str, default: bool) -> bool:
        if key not in self.obj:
            return default
        value = self.obj[key]
        if not isinstance(value, bool):
            raise self.error(f"'{key}' must be true or false, not {type_name(value)}")
        return value

    def items(self, key: str) -> list[Any]:
        """An optional list value (absent or null: empty)."""
        value = self.obj.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.error(f"'{key}' must be a list, not {type_name(value)}")
        return value


def _tsv_header(path: Path, lines: list[str], required: Sequence[str]) -> dict[str, int]:
    """Column name -> index of the header line; every ``required`` column must be there."""
    if not lines:
        raise DataFileError(path, None, "the file is empty: expected a header line "
                                          f"({', '.join(required)})")
    header = lines[0].split("\t")
    columns = {name.strip(): index for index, name in enumerate(header)}
    missing = [name for name in required if name not in columns]
    if missing:
        raise DataFileError(path, 1, f"missing column(s) {', '.join(missing)} in the header "
                                       f"(found: {', '.join(header)})")
    return columns


def tsv_rows(path: Path, lines: list[str], width: int) -> Iterator[tuple[int, list[str]]]:
    """(line number, fields) of the non-blank data lines; each must have ``width`` fields."""
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != width:
            raise DataFileError(path, number, f"{len(fields)} tab-separated field(s), but the "
                                                f"header has {width}")
        yield number, fields


# --------------------------------------------------------------------------- speech manifests

_MANIFEST_KEYS = frozenset({"audio_filepath", "duration", "text", "lang", "translation",
                            "entities"})
_ENTITY_KEYS = frozenset({"start", "end", "type", "text"})


@dataclass(frozen=True, order=True)
class CharSpan:
    """Characters ``start`` to ``end`` (end exclusive) of a transcript, of entity ``type``."""

    start: int
    end: int
    type: str


@dataclass(frozen=True)
class ManifestEntry:
    """One utterance of a NeMo-style manifest.

    ``audio_filepath`` is already joined to the manifest's folder when the file gave a relative
    path. ``translation`` maps a language to a reference translation (empty when there is
    none); ``entities`` are character spans of ``text``; ``extra`` holds every other key.
    """

    audio_filepath: Path
    duration: float
    text: str
    lang: str | None = None
    translation: dict[str, str] = field(default_factory=dict)
    entities: tuple[CharSpan, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        clash = sorted(_MANIFEST_KEYS & self.extra.keys())
        if clash:
            raise ValueError(f"extra keys {clash} clash with ManifestEntry's own fields")


def read_manifest(path: str | Path) -> list[ManifestEntry]:
    """The utterances of a JSONL manifest, one JSON object a line (blank lines are allowed).

    Required keys: ``audio_filepath`` (a relative path is taken relative to the manifest's
    folder), ``duration`` (seconds, a number >= 0) and ``text``. Optional: ``lang`` (null or
    absent: None); ``translation``, either an object ``{language: text}`` or a string whose
    language is given by the ``target_lang`` key (which is then consumed, not kept in
    ``extra``); ``entities``, a list of ``{"start", "end", "type"}`` character offsets into
    ``text`` with ``0 <= start < end <= len(text)`` and an optional ``"text"`` that must equal
    that slice (other keys in an entity are refused, so that nothing is silently dropped).
    Every other key goes to :attr:`ManifestEntry.extra` unchanged.
    """
    file = Path(path)
    entries = []
    for number, obj in json_lines(file):
        fields = JsonFields(obj, file, number)
        audio_text = fields.string("audio_filepath")
        if not audio_text.strip():
            raise fields.error("'audio_filepath' is empty")
        audio = Path(audio_text)
        duration = fields.number("duration")
        if duration < 0:
            raise fields.error(f"'duration' must not be negative, not {duration}")
        text = fields.string("text")
        extra = {k: v for k, v in obj.items() if k not in _MANIFEST_KEYS}
        translation = _manifest_translation(fields, extra)
        entities = tuple(_manifest_entity(item, index, text, file, number)
                         for index, item in enumerate(fields.items("entities"), start=1))
        entries.append(ManifestEntry(
            audio_filepath=audio if audio.is_absolute() else file.parent / audio,
            duration=duration, text=text, lang=fields.optional_string("lang"),
            translation=translation, entities=entities, extra=extra))
    return entries


def _manifest_translation(fields: JsonFields, extra: dict[str, Any]) -> dict[str, str]:
    value = fields.obj.get("translation")
    if value is None:
        return {}
    if isinstance(value, str):
        if "target_lang" not in fields.obj:
            raise fields.error("'translation' is a string but there is no 'target_lang' key "
                               "to say its language (or give {language: text})")
        target = fields.string("target_lang")
        del extra["target_lang"]
        return {target: value}
    if isinstance(value, dict):
        for language, text in value.items():
            if not isinstance(text, str):
                raise fields.error(f"'translation' for '{language}' must be a string, "
                                   f"not {type_name(text)}")
        return dict(value)
    raise fields.error("'translation' must be a string or an object {language: text}, "
                       f"not {type_name(value)}")


def _manifest_entity(item: object, index: int, text: str, path: Path, line: int) -> CharSpan:
    if not isinstance(item, dict):
        raise DataFileError(path, line, f"entity {index} must be an object "
                                          f"{{start, end, type}}, not {type_name(item)}")
    fields = JsonFields(item, path, line, f"entity {index}")
    unknown = sorted(item.keys() - _ENTITY_KEYS)
    if unknown:
        raise fields.error(f"unexpected key(s) {', '.join(unknown)} "
                           "(an entity has start, end, type and optionally text)")
    start, end, kind = fields.integer("start"), fields.integer("end"), fields.string("type")
    if not kind:
        raise fields.error("'type' is empty")
    if not 0 <= start < end <= len(text):
        raise fields.error(f"offsets {start}:{end} are outside the text (need 0 <= start < end "
                           f"<= {len(text)}, the length of 'text')")
    quoted = fields.optional_string("text")
    if quoted is not None and quoted != text[start:end]:
        raise fields.error(f"'text' is {quoted!r} but text[{start}:{end}] is "
                           f"{text[start:end]!r}")
    return CharSpan(start, end, kind)


def write_manifest(entries: Iterable[ManifestEntry], path: str | Path) -> None:
    """Write ``entries`` as a JSONL manifest that :func:`read_manifest` reads back unchanged.

    Audio paths under the manifest's folder (including ones read as ``folder/../x``) are
    written relative to it, the others as absolute paths. Entities
    are written with their ``"text"`` slice, translations as an object ``{language: text}``.
    """
    file = Path(path)
    folder = file.parent.absolute()
    lines = []
    for entry in entries:
        audio = entry.audio_filepath.absolute()
        if audio.is_relative_to(folder):
            audio = audio.relative_to(folder)
        row: dict[str, Any] = {"audio_filepath": audio.as_posix(), "duration": entry.duration,
                               "text": entry.text}
        if entry.lang is not None:
            row["lang"] = entry.lang
        if entry.translation:
            row["translation"] = entry.translation
        if entry.entities:
            row["entities"] = [{"start": e.start, "end": e.end, "type": e.type,
                                "text": entry.text[e.start:e.end]} for e in entry.entities]
        row.update(entry.extra)
        lines.append(json.dumps(row, ensure_ascii=False) + "\n")
    file.write_text("".join(lines), encoding="utf-8")


# --------------------------------------------------------------------------- parallel text

_PARALLEL_COLUMNS = ("id", "src_lang", "tgt_lang", "src", "ref")


@dataclass(frozen=True)
class ParallelSegment:
    """One source sentence and its reference translation."""

    id: str
    src_lang: str
    tgt_lang: str
    src: str
    ref: str


@dataclass(frozen=True)
class SkippedRow:
    """A row :func:`read_parallel_tsv` left out, and why."""

    line: int
    id: str
    reason: str


@dataclass(frozen=True)
class ParallelCorpus(Sequence[ParallelSegment]):
    """The segments of a parallel file (a sequence of them) and the rows that were skipped."""

    segments: tuple[ParallelSegment, ...]
    skipped: tuple[SkippedRow, ...] = ()

    def __len__(self) -> int:
        return len(self.segments)

    @overload
    def __getitem__(self, index: int) -> ParallelSegment: ...

    @overload
    def __getitem__(self, index: slice) -> tuple[ParallelSegment, ...]: ...

    def __getitem__(self, index: int | slice) -> ParallelSegment | tuple[ParallelSegment, ...]:
        return self.segments[index]

    def __iter__(self) -> Iterator[ParallelSegment]:
        return iter(self.segments)


def read_parallel_tsv(path: str | Path, *, keep_empty: bool = False) -> ParallelCorpus:
    """The segments of a TSV with columns ``id, src_lang, tgt_lang, src, ref`` (others ignored).

    A row whose ``src`` or ``ref`` is empty (or only whitespace) cannot be scored, so by
    default it is left out and recorded in :attr:`ParallelCorpus.skipped` with its line and
    reason (the WMT18 Medline de-en set has two empty source lines); ``keep_empty=True`` keeps
    it. Ids and language codes must be non-empty and ids unique. Texts are kept as written.
    """
    file = Path(path)
    lines = text_lines(file)
    columns = _tsv_header(file, lines, _PARALLEL_COLUMNS)
    width = len(lines[0].split("\t"))
    segments = []
    skipped = []
    seen: dict[str, int] = {}
    for number, row in tsv_rows(file, lines, width):
        segment = ParallelSegment(*(row[columns[name]] for name in _PARALLEL_COLUMNS))
        for name in ("id", "src_lang", "tgt_lang"):
            if not getattr(segment, name).strip():
                raise DataFileError(file, number, f"the '{name}' column is empty")
        if segment.id in seen:
            raise DataFileError(file, number, f"id {segment.id!r} was already used on line "
                                                f"{seen[segment.id]}")
        seen[segment.id] = number
        empty = [name for name in ("src", "ref") if not getattr(segment, name).strip()]
        if empty and not keep_empty:
            skipped.append(SkippedRow(number, segment.id, f"empty {' and '.join(empty)}"))
            continue
        segments.append(segment)
    return ParallelCorpus(tuple(segments), tuple(skipped))


# --------------------------------------------------------------------------- terminology MT


@dataclass(frozen=True)
class TermPair:
    """A source-language term and the target-language term a translation must use."""

    source: str
    target: str


@dataclass(frozen=True)
class TermSegment:
    """A segment of a terminology test set with its term constraints."""

    id: str
    src_lang: str
    tgt_lang: str
    src: str
    ref: str
    terms_proper: tuple[TermPair, ...] = ()
    terms_random: tuple[TermPair, ...] = ()
    digits_mismatch: bool = False
    """The source and reference contain different numbers (likely misaligned)."""


def read_terminology_jsonl(path: str | Path) -> list[TermSegment]:
    """The segments of a WMT23-terminology-style JSONL file.

    Required keys: ``id``, ``src_lang``, ``tgt_lang``, ``src``, ``ref``. Optional:
    ``terms_proper`` and ``terms_random`` (lists of ``{language: term}`` objects, each with a
    term for both ``src_lang`` and ``tgt_lang``; oriented into :class:`TermPair` from source
    to target) and ``digits_mismatch`` (default false). Ids must be unique.
    """
    file = Path(path)
    segments = []
    seen: dict[str, int] = {}
    for number, obj in json_lines(file):
        fields = JsonFields(obj, file, number)
        ident, src_lang, tgt_lang = (fields.string(k) for k in ("id", "src_lang", "tgt_lang"))
        if ident in seen:
            raise fields.error(f"id {ident!r} was already used on line {seen[ident]}")
        seen[ident] = number
        terms = {key: tuple(_term_pair(item, f"{key}[{index}]", src_lang, tgt_lang, file,
                                       number)
                            for index, item in enumerate(fields.items(key)))
                 for key in ("terms_proper", "terms_random")}
        segments.append(TermSegment(
            id=ident, src_lang=src_lang, tgt_lang=tgt_lang, src=fields.string("src"),
            ref=fields.string("ref"), terms_proper=terms["terms_proper"],
            terms_random=terms["terms_random"],
            digits_mismatch=fields.boolean("digits_mismatch", False)))
    return segments


def _term_pair(item: object, what: str, src_lang: str, tgt_lang: str, path: Path,
               line: int) -> TermPair:
    if not isinstance(item, dict):
        raise DataFileError(path, line, f"{what} must be an object {{language: term}}, "
                                          f"not {type_name(item)}")
    fields = JsonFields(item, path, line, what)
    pair = TermPair(fields.string(src_lang), fields.string(tgt_lang))
    if not pair.source.strip() or not pair.target.strip():
        raise fields.error("empty term")
    return pair
