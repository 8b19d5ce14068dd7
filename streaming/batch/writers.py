"""Render a transcript as txt, srt, vtt or json (entities highlighted, speakers named), and
write files atomically."""

from __future__ import annotations

import itertools
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ner.schema import AttributeType
from ner.types import Entity
from streaming.document import TranscriptDocument

FORMATS = ("txt", "srt", "vtt", "json")


def _read_umask() -> int:
    # os.umask can only be read by setting it; do it once, at import, before any thread starts.
    current = os.umask(0o022)
    os.umask(current)
    return current


_UMASK = _read_umask()


def _timestamp(seconds: float, separator: str) -> str:
    millis = round(max(seconds, 0.0) * 1000)
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{millis:03d}"


def _cue_text(text: str) -> str:
    # "-->" ends a cue's timing line in SRT and WebVTT, so it may not appear in cue text.
    return text.replace("-->", "->")


def _vtt_text(text: str) -> str:
    # WebVTT cue text is markup: a literal &, < or > must be written as a character reference.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


@dataclass(frozen=True)
class Mark:
    """A highlighted stretch of a segment's text: an entity or a medication attribute."""

    start: int
    end: int
    label: str
    """The schema type (MEDICATION, STRENGTH …)."""
    negated: bool = False


def marks_of(entities: Sequence[Entity]) -> list[Mark]:
    """The entities and their medications' attributes as marks, sorted and never overlapping
    (an attribute inside an entity's span is left to the entity)."""
    chosen = [Mark(e.start, e.end, e.type.value, e.negated) for e in entities]
    for attribute in (a for e in entities for a in e.attributes):
        if all(attribute.end <= m.start or m.end <= attribute.start for m in chosen):
            chosen.append(Mark(attribute.start, attribute.end, attribute.type.value))
    return sorted(chosen, key=lambda m: m.start)


def _highlight(text: str, entities: Sequence[Entity], plain: Callable[[str], str],
               wrap: Callable[[str, Mark], str]) -> str:
    pieces, at = [], 0
    for mark in marks_of(entities):
        pieces += [plain(text[at:mark.start]), wrap(plain(text[mark.start:mark.end]), mark)]
        at = mark.end
    pieces.append(plain(text[at:]))
    return "".join(pieces)


def _txt_mark(text: str, mark: Mark) -> str:
    return f"[{text}|{mark.label}{'|negated' if mark.negated else ''}]"


# Legible on video and on a white page; SRT players understand <font color> and <i>.
COLOURS = {
    "MEDICATION": "#1e88e5", "MEDICAL_CONDITION": "#e53935", "ANATOMY": "#43a047",
    "TEST_TREATMENT_PROCEDURE": "#8e24aa", "PROTECTED_HEALTH_INFORMATION": "#f9a825",
    "TIME_EXPRESSION": "#6d4c41",
}
ATTRIBUTE_COLOUR = "#00897b"


def _srt_mark(text: str, mark: Mark) -> str:
    coloured = f'<font color="{COLOURS.get(mark.label, ATTRIBUTE_COLOUR)}">{text}</font>'
    return f"<i>{coloured}</i>" if mark.negated else coloured


def _vtt_mark(text: str, mark: Mark) -> str:
    classes = mark.label.lower() + (".negated" if mark.negated else "")
    return f"<c.{classes}>{text}</c>"


def _vtt_style() -> str:
    rules = [f"::cue(.{label.lower()}) {{ color: {colour}; }}" for label, colour in
             [*COLOURS.items(), *((a.value, ATTRIBUTE_COLOUR) for a in AttributeType)]]
    return "STYLE\n" + "\n".join([*rules, "::cue(.negated) { font-style: italic; }"]) + "\n\n"


def _segment_texts(doc: TranscriptDocument, highlight: bool, plain: Callable[[str], str],
                   wrap: Callable[[str, Mark], str]) -> list[str]:
    if not highlight or doc.entities is None:
        return [plain(s.text) for s in doc.segments]
    return [_highlight(s.text, found, plain, wrap)
            for s, found in zip(doc.segments, doc.entities.per_segment, strict=True)]


FAILED_TRANSLATION = "[translation failed]"
"""Written where a segment's translation failed (its ``error`` is in the json)."""


def _translations(doc: TranscriptDocument) -> list[str | None]:
    """Each segment's translation (None: not translated; a mark where it failed, the json
    holding the error)."""
    if doc.translations is None:
        return [None] * len(doc.segments)
    return [None if t is None else FAILED_TRANSLATION if t.error is not None else t.text
            for t in doc.translations.per_segment]


def speaker_labels(doc: TranscriptDocument) -> dict[str, str]:
    """How each speaker is named in txt, srt and vtt: its role (``Clinician``), the role and
    the id when several speakers share it (``Other (S3)``), the id when it has no role."""
    if doc.speakers is None:
        return {}
    rows = doc.speakers.speakers
    shared = {r.role for r in rows if r.role is not None
              and sum(1 for other in rows if other.role == r.role) > 1}
    return {r.id: r.id if r.role is None else
            f"{r.role.capitalize()} ({r.id})" if r.role in shared else r.role.capitalize()
            for r in rows}


def _labels(doc: TranscriptDocument) -> list[str | None]:
    """Each segment's speaker label (None without speakers)."""
    if doc.speakers is None:
        return [None] * len(doc.segments)
    names = speaker_labels(doc)
    return [names.get(s.speaker) if s.speaker is not None else None for s in doc.segments]


def render_txt(doc: TranscriptDocument, highlight: bool = True) -> str:
    """One line per segment, or with speakers one line per turn (``Clinician: …``, the turn's
    segments joined); with entities, each is written ``[text|TYPE]``; a translation follows
    its segment (its turn) on a line of its own, ``  [en] …``."""
    lines: list[tuple[str | None, list[str], list[tuple[str, str]]]] = []
    for text, translated, target, label in zip(
            _segment_texts(doc, highlight, str, _txt_mark), _translations(doc),
            _targets(doc), _labels(doc), strict=True):
        if label is not None and lines and lines[-1][0] == label:
            lines[-1][1].append(text)
        else:
            lines.append((label, [text], []))
        if translated is not None:
            lines[-1][2].append((target, translated))
    out = []
    for label, texts, translations in lines:
        out.append(f"{label}: " if label is not None else "")
        out.append(" ".join(t.strip() for t in texts) if label is not None else texts[0])
        out.append("\n")
        # Consecutive translations into one language share a line (a turn's, with speakers).
        for target, group in itertools.groupby(translations, key=lambda t: t[0]):
            out.append(f"  [{target}] {' '.join(t.strip() for _, t in group)}\n")
    return "".join(out)


def _targets(doc: TranscriptDocument) -> list[str]:
    """The language each segment is translated into ("" where it is not): an interpreted
    recording's segments go into the other party's."""
    if doc.translations is None:
        return [""] * len(doc.segments)
    return [t.target_language if t is not None else "" for t in doc.translations.per_segment]


def render_srt(doc: TranscriptDocument, highlight: bool = True) -> str:
    """SubRip cues, each prefixed with its speaker (``Clinician: ``) when there are speakers;
    entities coloured by type with ``<font color>``, negated ones in italics; a translation
    as a second line in italics."""
    texts = _segment_texts(doc, highlight, _cue_text, _srt_mark)
    cues = []
    for number, (seg, text, translated, label) in enumerate(
            zip(doc.segments, texts, _translations(doc), _labels(doc), strict=True), start=1):
        span = f"{_timestamp(seg.start, ',')} --> {_timestamp(seg.end, ',')}"
        below = f"\n<i>{_cue_text(translated)}</i>" if translated else ""
        prefix = f"{label}: " if label is not None else ""
        cues.append(f"{number}\n{span}\n{prefix}{text.strip() if label else text}{below}\n")
    return "\n".join(cues)


def render_vtt(doc: TranscriptDocument, highlight: bool = True) -> str:
    """WebVTT cues, in a voice span (``<v Clinician>``) when there are speakers; entities as
    ``<c.medication>`` class spans, styled in a STYLE block; a translation as a second line in
    italics."""
    texts = _segment_texts(doc, highlight, lambda t: _vtt_text(_cue_text(t)), _vtt_mark)
    cues = []
    for seg, text, translated, label in zip(doc.segments, texts, _translations(doc),
                                            _labels(doc), strict=True):
        below = f"\n<i>{_vtt_text(_cue_text(translated))}</i>" if translated else ""
        voice = f"<v {_vtt_text(label)}>{text.strip()}</v>" if label is not None else text
        cues.append(f"{_timestamp(seg.start, '.')} --> {_timestamp(seg.end, '.')}\n"
                    f"{voice}{below}\n")
    style = _vtt_style() if highlight and doc.entities is not None else ""
    return "WEBVTT\n\n" + style + "\n".join(cues)


def render_json(doc: TranscriptDocument, highlight: bool = True) -> str:
    return doc.to_json()


RENDERERS: dict[str, Callable[[TranscriptDocument, bool], str]] = {
    "txt": render_txt,
    "srt": render_srt,
    "vtt": render_vtt,
    "json": render_json,
}


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` so that ``path`` holds either its old content or all of the new one.

    The data goes to a temporary file in the same folder, is flushed to disk, and is then
    renamed over ``path`` (atomic on POSIX and Windows for the same file system).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp makes the file owner-only; give it the mode a plain open() would (or the
        # replaced file's), so a shared transcripts folder stays readable to colleagues.
        Path(tmp).chmod(path.stat().st_mode & 0o777 if path.exists() else 0o666 & ~_UMASK)
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_outputs(doc: TranscriptDocument, stem: Path, formats: tuple[str, ...],
                  highlight: bool = True) -> list[Path]:
    """Write every requested format as ``stem.<format>`` (entities highlighted in txt, srt and
    vtt unless ``highlight`` is False).

    json is always written, and written last: it is the record that the file is complete.
    """
    ordered = [f for f in FORMATS if f in formats and f != "json"] + ["json"]
    written = []
    for fmt in ordered:
        target = stem.with_name(f"{stem.name}.{fmt}")
        write_atomic(target, RENDERERS[fmt](doc, highlight))
        written.append(target)
    return written
