"""Who said what, and when: conversations read from RTTM, role-labelled transcripts, dialogue
turn files and medstream's json transcripts, for the diarization evaluation.

A :class:`Conversation` is one recording seen two ways, either or both of which a file gives:

* a **timeline** (:class:`TimedTurn`: start, end, speaker, role), what DER and JER score;
* a **transcript** (:class:`TextTurn`: speaker, role, text, in spoken order), what cpWER, the
  role-attributed WER and the word-level role accuracy score.

Files and what they give:

* ``*.rttm`` (NIST RTTM; several recordings per file allowed): a timeline per file id. Only
  ``SPEAKER`` lines count; a speaker named after a role (``doctor``, ``patient``…) has that role.
* ``*.txt`` role-labelled transcripts (the Fareez OSCE files): paragraphs that start ``D:``
  (clinician) or ``P:`` (patient), also ``Clinician:``, ``Doctor:``, ``Patient:``, ``Other:``
  (medstream's txt output); ``D;`` is read as ``D:`` (two OSCE lines have that typo). A line
  without a label continues the turn before it. A transcript, no timeline.
* ``*.jsonl`` dialogue turns (``synth_dialogue_en/turns``): ``start``, ``end``, ``role``,
  ``text`` (and optionally ``speaker`` or ``speaker_tag``) per line: both views.
* ``*.json`` medstream transcripts (``medstream.transcript/1``) whose segments carry
  ``speaker`` and ``role``: both views; the recording is the stem of ``source.path``.

Recordings are keyed by id: the RTTM file id, the file's stem, the json's audio stem, or, for a
dataset folder with a ``manifest.jsonl``, the stem of each entry's ``audio_filepath`` (its
``turns``, ``rttm`` and ``transcript_file`` keys name the reference files).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from eval.readers import JsonFields
from ner.roles import Role
from speech.datafiles import json_lines, text_lines, type_name
from speech.errors import DataFileError

ROLE_NAMES: dict[str, Role] = {
    "d": "clinician", "doctor": "clinician", "clinician": "clinician", "physician": "clinician",
    "p": "patient", "patient": "patient", "other": "other",
}
"""Speaker names and labels (lower case) that say a role."""

TRANSCRIPT_SCHEMA = "medstream.transcript/1"


class NotATranscriptError(DataFileError):
    """A json file that is not a complete medstream transcript (a folder search passes over
    it; a file named explicitly is an error)."""


def role_of(name: str | None) -> Role | None:
    """The role a speaker name or label says (``"D"``, ``"doctor"``, ``"Patient"``), or None."""
    return ROLE_NAMES.get(name.strip().lower()) if name is not None else None


@dataclass(frozen=True)
class TimedTurn:
    """A stretch of one speaker's speech on the recording's clock (seconds)."""

    start: float
    end: float
    speaker: str
    role: Role | None = None


@dataclass(frozen=True)
class TextTurn:
    """What one speaker said in one turn (or one transcript segment)."""

    speaker: str
    text: str
    role: Role | None = None


@dataclass(frozen=True)
class Conversation:
    """One recording's speakers: its timeline, its transcript, or both, and where they came
    from."""

    id: str
    timeline: tuple[TimedTurn, ...] | None = None
    transcript: tuple[TextTurn, ...] | None = None
    sources: tuple[str, ...] = ()

    def merged(self, other: Conversation) -> Conversation:
        """Both files' views of the same recording; a view given twice is refused."""
        for view in ("timeline", "transcript"):
            if getattr(self, view) is not None and getattr(other, view) is not None:
                raise ValueError(f"two files give the {view} of {self.id}: "
                                 f"{', '.join(self.sources)} and {', '.join(other.sources)}")
        return Conversation(self.id, self.timeline if self.timeline is not None
                            else other.timeline,
                            self.transcript if self.transcript is not None else other.transcript,
                            self.sources + other.sources)


# --------------------------------------------------------------------------- RTTM


def read_rttm(path: str | Path) -> dict[str, tuple[TimedTurn, ...]]:
    """The ``SPEAKER`` lines of an RTTM file, per file id, in time order.

    Fields (space-separated): type, file id, channel, onset, duration, ``<NA>``, ``<NA>``,
    speaker name, and optionally confidence and lookahead. Blank lines and lines starting
    ``;`` or ``#`` are comments; other line types (``SPKR-INFO``…) are ignored.
    """
    file = Path(path)
    turns: dict[str, list[TimedTurn]] = {}
    for number, line in enumerate(text_lines(file), start=1):
        fields = line.split()
        if not fields or fields[0].startswith((";", "#")) or fields[0] != "SPEAKER":
            continue
        if len(fields) < 8:
            raise DataFileError(file, number, f"{len(fields)} fields; an RTTM SPEAKER line has "
                                              "at least 8 (type, file, channel, onset, "
                                              "duration, <NA>, <NA>, speaker)")
        onset, duration = (_seconds(fields[i], name, file, number)
                           for i, name in ((3, "onset"), (4, "duration")))
        speaker = fields[7]
        turns.setdefault(fields[1], []).append(
            TimedTurn(onset, onset + duration, speaker, role_of(speaker)))
    return {key: tuple(sorted(value, key=lambda t: (t.start, t.end)))
            for key, value in turns.items()}


def _seconds(text: str, name: str, path: Path, line: int) -> float:
    try:
        value = float(text)
    except ValueError:
        raise DataFileError(path, line, f"the {name} {text!r} is not a number") from None
    if not math.isfinite(value) or value < 0:
        raise DataFileError(path, line, f"the {name} must be a finite number >= 0, not {text}")
    return value


def write_rttm(conversation: Conversation, path: str | Path) -> None:
    """Write a conversation's timeline as RTTM (e.g. a hypothesis derived from a json
    transcript), one ``SPEAKER`` line per turn, times to the millisecond."""
    if conversation.timeline is None:
        raise ValueError(f"{conversation.id} has no timeline to write")
    lines = [f"SPEAKER {conversation.id} 1 {t.start:.3f} {t.end - t.start:.3f} <NA> <NA> "
             f"{t.speaker} <NA> <NA>\n" for t in conversation.timeline]
    Path(path).write_text("".join(lines), encoding="utf-8")


# --------------------------------------------------------------------------- labelled text

_LABEL = re.compile(r"^\s*(D|P|Doctor|Clinician|Patient|Other)\s*[:;]\s?(.*)$", re.IGNORECASE)


def read_role_transcript(path: str | Path) -> tuple[TextTurn, ...]:
    """The turns of a role-labelled transcript (``D: …`` / ``P: …`` paragraphs).

    A line starting with a label opens a turn; the following unlabelled lines continue it
    (joined with a space); blank lines separate paragraphs. The speaker is the label as
    written in upper case (``D``, ``P``, ``CLINICIAN``…), so every label is one speaker.
    """
    file = Path(path)
    turns: list[tuple[str, list[str]]] = []
    for number, line in enumerate(text_lines(file), start=1):
        if not line.strip():
            continue
        found = _LABEL.match(line)
        if found:
            turns.append((found.group(1).upper(), [found.group(2).strip()]))
        elif turns:
            turns[-1][1].append(line.strip())
        else:
            raise DataFileError(file, number, "text before the first speaker label (a turn "
                                              "starts 'D:' or 'P:', or 'Clinician:', "
                                              "'Patient:', 'Other:')")
    if not turns:
        raise DataFileError(file, None, "no labelled turn ('D: …' / 'P: …') in the file")
    return tuple(TextTurn(label, " ".join(p for p in parts if p), role_of(label))
                 for label, parts in turns)


# --------------------------------------------------------------------------- dialogue turns


def read_turns_jsonl(path: str | Path) -> Conversation:
    """A dialogue turn file: one JSON object a line with ``start``, ``end``, ``text`` and a
    ``role`` (and optionally ``speaker`` or ``speaker_tag``; the speaker is the first of
    ``speaker``, ``speaker_tag``, ``role`` that is given). The recording is the file's stem."""
    file = Path(path)
    timeline: list[TimedTurn] = []
    transcript: list[TextTurn] = []
    for number, obj in json_lines(file):
        fields = JsonFields(obj, file, number)
        start, end = fields.number("start"), fields.number("end")
        if not 0 <= start <= end:
            raise fields.error(f"the turn must have 0 <= start <= end, not {start}..{end}")
        role_name = fields.optional_string("role")
        speaker = (fields.optional_string("speaker") or fields.optional_string("speaker_tag")
                   or role_name)
        if not speaker:
            raise fields.error("no 'speaker', 'speaker_tag' or 'role' to say who speaks")
        role = role_of(role_name) if role_name is not None else role_of(speaker)
        timeline.append(TimedTurn(start, end, speaker, role))
        transcript.append(TextTurn(speaker, fields.string("text"), role))
    if not timeline:
        raise DataFileError(file, None, "the file holds no turn")
    return Conversation(file.stem, tuple(timeline), tuple(transcript), (str(file),))


# --------------------------------------------------------------------------- medstream json


def read_transcript_json(path: str | Path) -> Conversation:
    """A medstream json transcript whose segments carry ``speaker`` (and ``role``).

    Raises :class:`DataFileError` when the file is not a complete medstream transcript or was
    not diarized (no segment has a speaker). A segment without a speaker among diarized ones
    is kept as speaker ``"?"`` with no role, so that its words count against the system.
    """
    file = Path(path)
    data = _json_object(file)
    if data.get("schema") != TRANSCRIPT_SCHEMA or data.get("complete") is not True:
        raise NotATranscriptError(file, None, f"not a complete medstream transcript (schema "
                                        f"{data.get('schema')!r}, expected {TRANSCRIPT_SCHEMA})")
    fields = JsonFields(data, file, None)
    source = data.get("source")
    audio = source.get("path") if isinstance(source, dict) else None
    recording = Path(audio).stem if isinstance(audio, str) and audio else file.stem
    segments = fields.items("segments")
    timeline, transcript = _segment_turns(segments, file)
    if segments and all(t.speaker == "?" for t in timeline):
        raise DataFileError(file, None, "the transcript has no speakers (it was not "
                                        "diarized: run `medstream transcribe --speakers`)")
    return Conversation(recording, timeline, transcript, (str(file),))


def _json_object(file: Path) -> dict[str, Any]:
    try:
        text = file.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        raise DataFileError(file, None, f"not valid UTF-8 ({error.reason})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise DataFileError(file, error.lineno, f"not valid JSON: {error.msg}") from None
    if not isinstance(data, dict):
        raise DataFileError(file, None, f"expected a JSON object, found a {type_name(data)}")
    return data


def _segment_turns(segments: Sequence[Any], file: Path
                   ) -> tuple[tuple[TimedTurn, ...], tuple[TextTurn, ...]]:
    timeline, transcript = [], []
    for index, item in enumerate(segments, start=1):
        if not isinstance(item, dict):
            raise DataFileError(file, None, f"segment {index} is a {type_name(item)}, not an "
                                            "object")
        fields = JsonFields(item, file, None, f"segment {index}")
        start, end = fields.number("start"), fields.number("end")
        speaker = fields.optional_string("speaker") or "?"
        role_name = fields.optional_string("role")
        role = role_of(role_name)
        if role_name is not None and role is None:
            raise fields.error(f"unknown role {role_name!r} (clinician, patient or other)")
        timeline.append(TimedTurn(start, end, speaker, role))
        transcript.append(TextTurn(speaker, fields.string("text"), role))
    return tuple(timeline), tuple(transcript)


# --------------------------------------------------------------------------- folders and sets

FileKind = Literal["rttm", "txt", "jsonl", "json"]
REFERENCE_KINDS: tuple[FileKind, ...] = ("rttm", "txt", "jsonl", "json")
HYPOTHESIS_KINDS: tuple[FileKind, ...] = ("rttm", "json")
"""What a folder of system output is searched for: its txt files are renderings of the json."""


@dataclass
class ConversationSet:
    """The recordings read from some paths, and the files (or recordings) that failed."""

    conversations: dict[str, Conversation] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    """A file or recording id -> why it could not be read."""

    def add(self, conversation: Conversation) -> None:
        """Add a recording, or the other view of one already read. A recording two files
        give the same view of is ambiguous: it is dropped and its error recorded."""
        if conversation.id in self.errors:
            return
        known = self.conversations.get(conversation.id)
        if known is None:
            self.conversations[conversation.id] = conversation
            return
        try:
            self.conversations[conversation.id] = known.merged(conversation)
        except ValueError as error:
            del self.conversations[conversation.id]
            self.errors[conversation.id] = str(error)


def read_file(path: Path) -> list[Conversation]:
    """The conversations of one file, read by its extension."""
    suffix = path.suffix.lower().lstrip(".")
    if suffix == "rttm":
        return [Conversation(key, turns, None, (str(path),))
                for key, turns in read_rttm(path).items()]
    if suffix == "txt":
        return [Conversation(path.stem, None, read_role_transcript(path), (str(path),))]
    if suffix == "jsonl":
        return [read_turns_jsonl(path)]
    if suffix == "json":
        return [read_transcript_json(path)]
    raise DataFileError(path, None, "unknown kind of file: give .rttm, .txt (D:/P: turns), "
                                    ".jsonl (dialogue turns) or .json (medstream transcript)")


def read_conversations(paths: Iterable[Path], kinds: Sequence[FileKind] = REFERENCE_KINDS
                       ) -> ConversationSet:
    """Every conversation under ``paths`` (files, dataset folders with a ``manifest.jsonl``,
    or folders searched for files of ``kinds``). A file that cannot be read is recorded in
    :attr:`ConversationSet.errors`, with the reason, and the others are still read."""
    found = ConversationSet()
    for path in paths:
        if path.is_file():
            _read_into(found, path, None, explicit=True)
        elif not path.is_dir():
            found.errors[str(path)] = f"{path}: no such file or folder"
        else:
            files = _folder_files(path, kinds, found)
            if not files:
                found.errors.setdefault(str(path), f"{path}: no reference or transcript file "
                                        f"here (looked for {', '.join('*.' + k for k in kinds)}"
                                        " or a manifest.jsonl naming them)")
            for file, ident in files:
                _read_into(found, file, ident, explicit=False)
    return found


def _folder_files(folder: Path, kinds: Sequence[FileKind], found: ConversationSet
                  ) -> list[tuple[Path, str | None]]:
    manifests = sorted(folder.rglob("manifest.jsonl"))
    if manifests:
        return [entry for m in manifests for entry in _manifest_files(m, found)]
    return [(f, None) for f in sorted(folder.rglob("*"))
            if f.is_file() and f.suffix.lower().lstrip(".") in kinds]


def _read_into(found: ConversationSet, file: Path, ident: str | None, explicit: bool) -> None:
    try:
        conversations = read_file(file)
    except NotATranscriptError as error:
        if explicit:
            found.errors[str(file)] = str(error)
        return
    except DataFileError as error:
        found.errors[str(file)] = str(error)
        return
    except OSError as error:
        found.errors[str(file)] = f"{file}: cannot read the file ({error.strerror})"
        return
    for conversation in conversations:
        found.add(replace(conversation, id=ident) if ident is not None else conversation)


def _manifest_files(manifest: Path, found: ConversationSet) -> list[tuple[Path, str | None]]:
    """(reference file, recording id) of each manifest entry: its ``turns`` file if it has
    one (timeline and text together), else its ``rttm`` and ``transcript_file``."""
    files: list[tuple[Path, str | None]] = []
    try:
        rows = list(json_lines(manifest))
    except DataFileError as error:
        found.errors[str(manifest)] = str(error)
        return files
    for number, obj in rows:
        fields = JsonFields(obj, manifest, number)
        try:
            recording = Path(fields.string("audio_filepath")).stem
            keys = ["turns"] if obj.get("turns") else ["rttm", "transcript_file"]
            named = [fields.optional_string(key) for key in keys]
        except DataFileError as error:
            found.errors[f"{manifest}:{number}"] = str(error)
            continue
        files += [(manifest.parent / name, recording) for name in named if name]
    return files
