"""The role-labelled conversations the roles recipe trains and reports on.

* ``../shared/data/dialogue/<corpus>/<split>.jsonl`` (MTS-Dialog, ACI-Bench; its README): one
  dialogue a line, turns ``{speaker, role, text}``. The data's ``role`` calls every tag other
  than Doctor/Patient ``other``, second doctors included; :func:`tag_role` reads clinicians
  from the tag instead (``Doctor_2``, ``Docotr_2``, ``Guest_clinician``), so that "other" means
  a relative or another non-clinician.
* The OSCE interview transcripts (``D: …`` / ``P: …`` paragraphs; ``D;`` also occurs, and a
  paragraph without a prefix continues the turn before it): :func:`read_osce`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from eval.conversations import read_role_transcript
from ner.roles import Role
from speech.datafiles import json_lines
from speech.errors import DataFileError

CLINICIAN_TAGS = re.compile(r"^\[?(doctor|docotr)(_\d+)?\]?$|^guest_clinic", re.IGNORECASE)
PATIENT_TAGS = re.compile(r"^\[?patient\]?$", re.IGNORECASE)


@dataclass(frozen=True)
class Turn:
    speaker: str
    role: Role
    text: str


@dataclass(frozen=True)
class Dialogue:
    id: str
    corpus: str
    subset: str
    """ACI-Bench's ``dataset`` (aci, virtassist, virtscribe); the corpus name elsewhere."""
    turns: tuple[Turn, ...]

    def speaker_roles(self) -> dict[str, Role]:
        """Each speaker's role, in order of first appearance."""
        return {turn.speaker: turn.role for turn in self.turns}


def tag_role(speaker: str) -> Role:
    """The role a source's speaker tag names (a second doctor is a clinician)."""
    if CLINICIAN_TAGS.match(speaker.strip()):
        return "clinician"
    if PATIENT_TAGS.match(speaker.strip()):
        return "patient"
    return "other"


def load_dialogues(root: Path, corpus: str, split: str) -> list[Dialogue]:
    """The dialogues of one corpus split, turns without text left out."""
    path = root / corpus / f"{split}.jsonl"
    dialogues = []
    for number, row in json_lines(path):
        try:
            turns = tuple(Turn(str(t["speaker"]), tag_role(str(t["speaker"])), str(t["text"]))
                          for t in row["turns"] if str(t["text"]).strip())
            dialogues.append(Dialogue(str(row["id"]), corpus, str(row.get("dataset", corpus)),
                                      turns))
        except (KeyError, TypeError) as exc:
            raise DataFileError(path, number, f"not a dialogue row: {exc!r}") from exc
    return dialogues


def read_osce(path: Path) -> Dialogue:
    """An OSCE transcript: ``D`` is the clinician, ``P`` the patient (read by
    :func:`eval.conversations.read_role_transcript`, as ``medstream eval diarization`` reads it)."""
    turns = tuple(Turn(turn.speaker, turn.role or "other", turn.text)
                  for turn in read_role_transcript(path))
    return Dialogue(path.stem, "osce", "osce", turns)
