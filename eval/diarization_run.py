"""What ``medstream eval diarization`` runs: pair hypothesis and reference conversations by
recording id and build the report section (DER, JER, WER, cpWER, role-attributed WER, role
accuracy, overall and per recording).

A metric runs on the recordings whose two sides give what it needs (times for DER, JER and the
time-weighted role accuracy; words for the WERs and the per-word role accuracy; roles on both
sides for the role metrics); when no recording does, the report says why it was skipped.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from eval.conversations import Conversation, ConversationSet
from eval.diarization import (
    DEFAULT_COLLAR,
    AttributedWER,
    DiarizationError,
    RoleAccuracy,
    SpeakerRole,
    has_roles,
    majority_roles,
    role_table,
    speaker_roles,
)
from eval.metric import Metric
from eval.report import Section


@dataclass(frozen=True)
class Pair:
    """A recording's reference and hypothesis."""

    id: str
    reference: Conversation
    hypothesis: Conversation

    @property
    def timed(self) -> bool:
        return self.reference.timeline is not None and self.hypothesis.timeline is not None

    @property
    def worded(self) -> bool:
        return (self.reference.transcript is not None
                and self.hypothesis.transcript is not None)

    @property
    def roled(self) -> bool:
        return has_roles(self.reference) and has_roles(self.hypothesis)


def pair_conversations(references: ConversationSet, hypotheses: ConversationSet
                       ) -> tuple[list[Pair], dict[str, str]]:
    """The recordings both sides have, and every problem (unreadable file, recording without
    a hypothesis) keyed by file or recording. Hypotheses without a reference are ignored."""
    problems = {**references.errors, **hypotheses.errors}
    pairs = []
    for ident, reference in sorted(references.conversations.items()):
        hypothesis = hypotheses.conversations.get(ident)
        if hypothesis is None:
            if ident not in problems:
                problems[ident] = (f"no hypothesis for recording {ident} (a json transcript of "
                                   f"{ident}.* or an RTTM with file id {ident})")
            continue
        pairs.append(Pair(ident, reference, hypothesis))
    return pairs, problems


Eligible = Callable[[Pair], bool]

_NEEDS: dict[str, tuple[Eligible, str]] = {
    "times": (lambda p: p.timed, "needs times on both sides (RTTM, dialogue turns or json "
                                 "segments)"),
    "words": (lambda p: p.worded, "needs text on both sides (D:/P: transcript, dialogue turns "
                                  "or json segments)"),
    "role-words": (lambda p: p.worded and p.roled, "needs text and roles on both sides"),
    "role-times": (lambda p: p.timed and p.roled, "needs times and roles on both sides"),
    "roles": (lambda p: (p.timed or p.worded) and p.roled, "needs roles on both sides"),
}


def diarization_metrics(collar: float = DEFAULT_COLLAR, language: str = "en"
                        ) -> list[tuple[Metric, str]]:
    """Every metric of the report and what it needs (a key of ``_NEEDS``)."""
    return [
        (DiarizationError(collar), "times"),
        (DiarizationError(0.0), "times"),
        (DiarizationError(collar, jaccard=True), "times"),
        (AttributedWER("wer", language), "words"),
        (AttributedWER("cpwer", language), "words"),
        (AttributedWER("role", language), "role-words"),
        (RoleAccuracy("speaker", language), "roles"),
        (RoleAccuracy("word", language), "role-words"),
        (RoleAccuracy("time", language), "role-times"),
    ]


def diarization_section(pairs: Sequence[Pair], problems: dict[str, str] | None = None,
                        collar: float = DEFAULT_COLLAR, language: str = "en") -> Section:
    """Every metric overall (subset ``all``) and per recording, one item per recording with
    its figures and its speakers' roles; ``problems`` are listed as skipped recordings.

    An item's ``roles_right`` holds when every hypothesis speaker has its reference speaker's
    role and every reference speaker has a hypothesis speaker."""
    section = Section("diarization", "Speakers and roles")
    items: dict[str, dict[str, Any]] = {p.id: {"id": p.id} for p in pairs}
    for metric, need in diarization_metrics(collar, language):
        eligible, reason = _NEEDS[need]
        chosen = [p for p in pairs if eligible(p)]
        label = metric.name
        if not chosen:
            section.skipped[label] = reason
            continue
        try:
            section.add("all", metric.corpus_score([p.hypothesis for p in chosen],
                                                   [p.reference for p in chosen]))
        except ValueError as error:
            section.skipped[label] = str(error)
            continue
        for pair in chosen:
            try:
                score = metric.corpus_score([pair.hypothesis], [pair.reference])
            except ValueError as error:
                section.skipped[f"{label} [{pair.id}]"] = str(error)
                continue
            section.add(pair.id, score)
            items[pair.id][label] = round(score.score, 3)
        if len(chosen) < len(pairs):
            section.notes.append(f"{label}: {len(chosen)} of {len(pairs)} recordings ({reason}).")
    for pair in pairs:
        found = _speaker_roles(pair, language)
        if found:
            missed = sorted(set(majority_roles(pair.reference)) - {s.maps_to for s in found})
            items[pair.id]["speakers"] = role_table(found)
            items[pair.id]["reference_speakers_missed"] = missed
            items[pair.id]["roles_right"] = all(s.right for s in found) and not missed
            section.notes.append(f"Roles of {pair.id}: " + "; ".join(
                [*map(_describe, found), *(f"{r} has no hypothesis speaker" for r in missed)])
                + ".")
        items[pair.id]["speaker_count"] = {"reference": _count(pair.reference),
                                           "hypothesis": _count(pair.hypothesis)}
        items[pair.id]["sources"] = [*pair.reference.sources, *pair.hypothesis.sources]
    section.items = list(items.values())
    for key, message in (problems or {}).items():
        section.skipped[key] = message
    section.notes.append(
        f"DER and JER leave {collar:g} s on each side of every reference boundary unscored "
        f"(NIST md-eval convention; pyannote collar={2 * collar:g}); DER (no collar) scores "
        "everything. Overlapping speech is scored. Each turn is normalised on its own before "
        "the WERs; role-attributed WER pairs words by role without permutation.")
    return section


def _speaker_roles(pair: Pair, language: str) -> list[SpeakerRole]:
    """The pair's hypothesis speakers with their roles and mapping; none when the pair has no
    roles or cannot be mapped (the role-accuracy rows then say why)."""
    if not pair.roled or not (pair.timed or pair.worded):
        return []
    try:
        return speaker_roles(pair.reference, pair.hypothesis, language)
    except ValueError:
        return []


def _describe(found: SpeakerRole) -> str:
    role = found.role or "no role"
    if found.maps_to is None:
        return f"{found.speaker} {role} → no reference speaker"
    verdict = "right" if found.right else "WRONG"
    return (f"{found.speaker} {role} → {found.maps_to} "
            f"({found.reference_role or 'no role'}) {verdict}")


def _count(conversation: Conversation) -> int:
    """The number of distinct speakers (from the timeline, else the transcript)."""
    turns = conversation.timeline or conversation.transcript or ()
    return len({turn.speaker for turn in turns})
