"""Render a transcript as txt, srt, vtt or json, and write files atomically."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

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


def render_txt(doc: TranscriptDocument) -> str:
    """One line per segment."""
    return "".join(f"{s.text}\n" for s in doc.segments)


def render_srt(doc: TranscriptDocument) -> str:
    cues = []
    for number, seg in enumerate(doc.segments, start=1):
        span = f"{_timestamp(seg.start, ',')} --> {_timestamp(seg.end, ',')}"
        cues.append(f"{number}\n{span}\n{_cue_text(seg.text)}\n")
    return "\n".join(cues)


def render_vtt(doc: TranscriptDocument) -> str:
    cues = [f"{_timestamp(s.start, '.')} --> {_timestamp(s.end, '.')}\n{_cue_text(s.text)}\n"
            for s in doc.segments]
    return "WEBVTT\n\n" + "\n".join(cues)


def render_json(doc: TranscriptDocument) -> str:
    return doc.to_json()


RENDERERS: dict[str, Callable[[TranscriptDocument], str]] = {
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


def write_outputs(doc: TranscriptDocument, stem: Path, formats: tuple[str, ...]) -> list[Path]:
    """Write every requested format as ``stem.<format>``.

    json is always written, and written last: it is the record that the file is complete.
    """
    ordered = [f for f in FORMATS if f in formats and f != "json"] + ["json"]
    written = []
    for fmt in ordered:
        target = stem.with_name(f"{stem.name}.{fmt}")
        write_atomic(target, RENDERERS[fmt](doc))
        written.append(target)
    return written
