"""Speech manifests in the NeMo JSONL convention: read, check, write.

One JSON object per line with ``audio_filepath`` (absolute, or relative to the manifest's
folder), ``duration`` (seconds), ``text`` and optionally ``lang`` and anything else. Every
recipe reads its data through :func:`read_manifest` and :func:`validate`, which reports *all*
problems (missing or unreadable audio, empty text, a duration that disagrees with the file,
durations out of range) instead of stopping at the first, and keeps the good entries.
:func:`rate_outliers` flags entries whose speaking rate is far from the rest (likely a transcript
that does not belong to its audio).
"""

from __future__ import annotations

import json
import re
import statistics
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import soundfile as sf


@dataclass(frozen=True)
class Entry:
    audio_filepath: Path
    duration: float
    text: str
    lang: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps({"audio_filepath": str(self.audio_filepath), "duration": self.duration,
                           "text": self.text, **({"lang": self.lang} if self.lang else {}),
                           **self.extra}, ensure_ascii=False)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one entry: ``line`` is its 1-based position (manifest line, source
    row), ``kind`` a stable name to group problems by, ``warning`` True when the entry is kept."""

    line: int
    audio: str
    reason: str
    kind: str = ""
    warning: bool = False


def read_manifest(path: Path) -> tuple[list[Entry], list[Problem]]:
    """Entries of a manifest, with paths resolved; malformed lines become problems."""
    entries, problems = [], []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            audio = Path(raw.pop("audio_filepath"))
            duration = float(raw.pop("duration", 0.0) or 0.0)
            text = str(raw.pop("text", ""))
        except (ValueError, KeyError, TypeError) as exc:
            problems.append(Problem(number, "", f"{path}:{number}: not a manifest line ({exc})",
                                    "malformed line"))
            continue
        lang = str(raw.pop("lang", "") or "")
        entries.append(Entry(audio if audio.is_absolute() else path.parent / audio, duration,
                             text, lang, raw))
    return entries, problems


def write_manifest(entries: Iterable[Entry], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(e.to_json() + "\n" for e in entries), encoding="utf-8")
    return path


def validate(entries: Sequence[Entry], *, min_duration: float = 0.1,
             max_duration: float = 30.0, tolerance: float = 0.5
             ) -> tuple[list[Entry], list[Problem]]:
    """The usable entries (durations read from the files) and every problem found."""
    good, problems = [], []
    for index, entry in enumerate(entries, 1):
        name = str(entry.audio_filepath)
        if not entry.text.strip():
            problems.append(Problem(index, name, "empty text", "empty text"))
            continue
        if not entry.audio_filepath.is_file():
            problems.append(Problem(index, name, "audio file missing", "audio file missing"))
            continue
        try:
            info = sf.info(str(entry.audio_filepath))
        except (RuntimeError, sf.LibsndfileError) as exc:
            problems.append(Problem(index, name, f"unreadable audio ({exc})", "unreadable audio"))
            continue
        duration = info.frames / info.samplerate
        if entry.duration and abs(entry.duration - duration) > tolerance:
            problems.append(Problem(index, name, f"manifest says {entry.duration:.2f} s, the "
                                    f"file has {duration:.2f} s (using the file)",
                                    "duration disagrees with the file", warning=True))
        if not min_duration <= duration <= max_duration:
            problems.append(Problem(index, name, f"duration {duration:.2f} s outside "
                                    f"[{min_duration}, {max_duration}]", "duration out of range"))
            continue
        good.append(Entry(entry.audio_filepath, round(duration, 3), entry.text, entry.lang,
                          entry.extra))
    return good, problems


def rate_outliers(entries: Sequence[Entry], *, factor: float = 3.0, min_group: int = 5
                  ) -> list[Problem]:
    """Warnings for entries whose speaking rate (characters per second, spaces not counted) is
    more than ``factor`` times the median of their language, or less than the median divided
    by ``factor``: usually a transcript that belongs to another clip, or a truncated one. The
    median is taken per ``lang`` (Chinese has far fewer characters per second than Spanish) and
    only over languages with at least ``min_group`` entries; entries without a duration are
    skipped. ``line`` is the entry's 1-based position in ``entries``."""
    rates: dict[str, list[tuple[int, Entry, float]]] = {}
    for index, entry in enumerate(entries, 1):
        if entry.duration > 0:
            rate = len("".join(entry.text.split())) / entry.duration
            rates.setdefault(entry.lang, []).append((index, entry, rate))
    problems = []
    for group in rates.values():
        if len(group) < min_group:
            continue
        median = statistics.median(rate for _, _, rate in group)
        for index, entry, rate in group:
            if rate > factor * median or rate * factor < median:
                problems.append(Problem(
                    index, str(entry.audio_filepath),
                    f"{rate:.1f} characters/s against a median of {median:.1f} for "
                    f"'{entry.lang or '?'}' (transcript and audio may not match)",
                    "speaking rate outlier", warning=True))
    return problems


def normalise_text(text: str) -> str:
    """Lower case, letters, digits, apostrophes and single spaces: the usual ASR target text
    for a model without punctuation (diacritics kept)."""
    text = unicodedata.normalize("NFC", text.lower())
    text = re.sub(r"[^\w' ]+", " ", text)
    return re.sub(r"\s+", " ", text.replace("_", " ")).strip()
