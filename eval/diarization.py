"""Who-said-what metrics: DER and JER (pyannote.metrics), cpWER (meeteval), role-attributed
WER, plain WER and role accuracy, over :class:`~eval.conversations.Conversation` pairs.

Conventions (every one is written into the metric's signature):

* **Collar.** ``collar`` is the NIST md-eval / dscore convention: that many seconds *on each
  side* of every reference boundary are not scored (default 0.25 s, so half a second around
  each boundary). pyannote's ``collar`` argument is the *total* width of that window, so it
  gets ``2 * collar``. Overlapping speech is scored; the scored region is the union of the
  reference's and the hypothesis' extents (no UEM file).
* **Words.** Each turn (reference) or segment (hypothesis) is normalised on its own with the
  shared normaliser of :mod:`eval.normalize` (as :class:`eval.wer.ErrorRate` prepares text),
  then split into words that keep their turn's speaker and role. Every WER here is computed
  on those words, so the differences between plain WER, cpWER and role-attributed WER come
  from attribution alone.
* **WER**: all words in spoken order, speakers ignored. **cpWER** (Watanabe et al. 2020,
  CHiME-6): each speaker's words concatenated, the reference and hypothesis speakers paired
  by the permutation with the fewest errors (meeteval, Hungarian), errors summed over speakers
  (unpaired speakers' words are all deletions or insertions). **Role-attributed WER**: the
  same with the pairing fixed by role, no permutation: the clinician words of the hypothesis
  against the reference's clinician words, patient against patient, ``other`` against
  ``other``; words without a role are a stream of their own, so every one is an error. A word
  given to the wrong role is a deletion in one stream and an insertion in the other.
  All three are pooled over recordings as (S + D + I) / N.
* **Role accuracy**, three ways. *Per speaker*: each hypothesis speaker is mapped to a
  reference speaker (DER's optimal mapping when both sides have times, else cpWER's
  assignment); it is right when its role equals the majority role (by time, else by words)
  of that reference speaker. Hypothesis speakers left unmapped are counted in the details,
  not in the rate. *Per word*: the words that the plain-WER alignment pairs (hits and
  substitutions) whose hypothesis role equals the reference role. *Time-weighted*: over the
  time where a reference turn and a hypothesis segment overlap, the share where their roles
  agree.
"""

from __future__ import annotations

import importlib.metadata
import logging
import warnings
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Literal

import jiwer

from eval.conversations import Conversation, TextTurn, TimedTurn
from eval.metric import Metric, Score, check_lengths
from eval.normalize import CHARACTER_LANGUAGES
from eval.wer import Alignment, ErrorRate
from ner.roles import Role

if TYPE_CHECKING:
    from pyannote.core import Annotation  # type: ignore[import-untyped]

# pyannote.metrics and meeteval are imported where they are used: they pull in scipy, pandas
# and matplotlib (1.7 s), which every `medstream` command would otherwise pay at start-up.

DEFAULT_COLLAR = 0.25
"""Seconds not scored on each side of every reference boundary (NIST convention)."""

NO_ROLE = "none"
"""The stream key of words whose speaker has no role."""


def _version(package: str) -> str:
    return importlib.metadata.version(package)


# --------------------------------------------------------------------------- timelines


def merge_overlaps(turns: Sequence[TimedTurn]) -> list[TimedTurn]:
    """The turns with each speaker's overlapping turns of one role joined, in time order.

    A speaker overlapping themself (transcript segments whose times overlap by a few
    milliseconds) would otherwise count as two voices: pyannote scores the extra one as false
    alarm, and the overlap would be counted twice in the time-weighted role accuracy."""
    merged: list[TimedTurn] = []
    last: dict[tuple[str, Role | None], int] = {}
    for turn in sorted(turns, key=lambda t: (t.start, t.end)):
        key = (turn.speaker, turn.role)
        index = last.get(key)
        if index is not None and turn.start <= merged[index].end:
            merged[index] = replace(merged[index], end=max(merged[index].end, turn.end))
            continue
        last[key] = len(merged)
        merged.append(turn)
    return merged


def annotation(conversation: Conversation) -> Annotation:
    """A conversation's timeline as a pyannote annotation (self-overlaps merged, empty turns
    left out)."""
    from pyannote.core import Annotation, Segment

    assert conversation.timeline is not None
    result = Annotation(uri=conversation.id)
    for index, turn in enumerate(merge_overlaps(conversation.timeline)):
        if turn.end > turn.start:
            result[Segment(turn.start, turn.end), index] = turn.speaker
    return result


class DiarizationError(Metric):
    """DER or JER (pyannote.metrics) with a collar of ``collar`` seconds each side."""

    higher_is_better = False

    def __init__(self, collar: float = DEFAULT_COLLAR, jaccard: bool = False) -> None:
        if collar < 0:
            raise ValueError(f"the collar must be >= 0 seconds, not {collar}")
        self.collar = collar
        self.jaccard = jaccard
        self.name = f"{'JER' if jaccard else 'DER'} ±{collar:g}s"

    def signature(self) -> str:
        kind = "jer" if self.jaccard else "der"
        return (f"{kind}|collar:±{self.collar:g}s|overlap:scored|uem:union"
                f"|pyannote.metrics:{_version('pyannote.metrics')}")

    def corpus_score(self, hypotheses: Sequence[Conversation],
                     references: Sequence[Conversation]) -> Score:
        from pyannote.metrics.diarization import DiarizationErrorRate, JaccardErrorRate

        check_lengths(hypotheses, references)
        metric = (JaccardErrorRate if self.jaccard else DiarizationErrorRate)(
            collar=2 * self.collar, skip_overlap=False)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="'uem' was approximated")
            for hypothesis, reference in zip(hypotheses, references, strict=True):
                metric(annotation(reference), annotation(hypothesis))
        totals = dict(metric.accumulated_)
        return self._score(100 * abs(metric), recordings=len(references), **{
            key.replace(" ", "_"): round(value, 3) for key, value in totals.items()})


def speaker_mapping(reference: Conversation, hypothesis: Conversation,
                    language: str = "en") -> dict[str, str]:
    """Hypothesis speaker -> reference speaker: DER's optimal (Hungarian) mapping when both
    sides have a timeline, else cpWER's assignment on the words (normalised for
    ``language``)."""
    if reference.timeline is not None and hypothesis.timeline is not None:
        from pyannote.metrics.diarization import DiarizationErrorRate

        mapping = DiarizationErrorRate().optimal_mapping(annotation(reference),
                                                         annotation(hypothesis))
        return {str(h): str(r) for h, r in mapping.items()}
    words = WordStreams.of(reference, hypothesis, ErrorRate(language, "wer"))
    _, pairs = _cpwer(words.reference, words.hypothesis)
    return {h: r for r, h in pairs if r is not None and h is not None}


# --------------------------------------------------------------------------- words


@dataclass(frozen=True)
class Word:
    """A normalised word and who said it."""

    text: str
    speaker: str
    role: Role | None


def words_of(transcript: Sequence[TextTurn], prepare: ErrorRate) -> list[Word]:
    """The normalised words of a transcript in spoken order, each with its turn's speaker and
    role (each turn normalised on its own)."""
    return [Word(text, turn.speaker, turn.role)
            for turn in transcript for text in prepare.prepare(turn.text).split()]


@dataclass(frozen=True)
class WordStreams:
    reference: list[Word]
    hypothesis: list[Word]

    @classmethod
    def of(cls, reference: Conversation, hypothesis: Conversation,
           prepare: ErrorRate) -> WordStreams:
        assert reference.transcript is not None and hypothesis.transcript is not None
        if prepare.language in CHARACTER_LANGUAGES:
            raise ValueError(f"these metrics count words, and {prepare.language!r} is written "
                             "without spaces between words")
        return cls(words_of(reference.transcript, prepare),
                   words_of(hypothesis.transcript, prepare))


def edit_counts(reference: Sequence[str], hypothesis: Sequence[str]) -> Alignment:
    """Levenshtein edit counts of two word sequences (jiwer)."""
    if not reference or not hypothesis:
        return Alignment(0, 0, len(reference), len(hypothesis))
    out = jiwer.process_words(" ".join(reference), " ".join(hypothesis))
    return Alignment(out.hits, out.substitutions, out.deletions, out.insertions)


def _by_key(words: Sequence[Word], key: Literal["speaker", "role"]) -> dict[str, list[str]]:
    streams: dict[str, list[str]] = defaultdict(list)
    for word in words:
        streams[getattr(word, key) or NO_ROLE].append(word.text)
    return dict(streams)


def _cpwer(reference: Sequence[Word], hypothesis: Sequence[Word]
           ) -> tuple[Alignment, list[tuple[str | None, str | None]]]:
    """meeteval's cpWER edit counts of two word streams grouped by speaker (the words are
    already in spoken order), and its (reference, hypothesis) speaker pairs."""
    from meeteval.wer.wer.cp import cp_word_error_rate  # type: ignore[import-untyped]

    logging.getLogger("meeteval").setLevel(logging.ERROR)
    result = cp_word_error_rate(
        {k: " ".join(v) for k, v in _by_key(reference, "speaker").items()},
        {k: " ".join(v) for k, v in _by_key(hypothesis, "speaker").items()},
        reference_sort=False, hypothesis_sort=False)
    substitutions, deletions = int(result.substitutions), int(result.deletions)
    counts = Alignment(int(result.length) - substitutions - deletions, substitutions,
                       deletions, int(result.insertions))
    if counts.errors != int(result.errors):
        raise AssertionError(f"meeteval's counts do not add up: {result}")
    return counts, [(r, h) for r, h in result.assignment]


def _add(a: Alignment, b: Alignment) -> Alignment:
    return Alignment(a.hits + b.hits, a.substitutions + b.substitutions,
                     a.deletions + b.deletions, a.insertions + b.insertions)


def role_counts(reference: Sequence[Word], hypothesis: Sequence[Word]) -> Alignment:
    """Edit counts with each role's words scored against the same role's reference words."""
    ref, hyp = _by_key(reference, "role"), _by_key(hypothesis, "role")
    total = Alignment(0, 0, 0, 0)
    for role in sorted(ref.keys() | hyp.keys()):
        total = _add(total, edit_counts(ref.get(role, []), hyp.get(role, [])))
    return total


WerKind = Literal["wer", "cpwer", "role"]
_WER_NAMES: dict[WerKind, str] = {"wer": "WER", "cpwer": "cpWER", "role": "role-WER"}


class AttributedWER(Metric):
    """Plain WER, cpWER or role-attributed WER of conversations' transcripts (see the module
    docstring), pooled over recordings."""

    higher_is_better = False

    def __init__(self, kind: WerKind, language: str = "en") -> None:
        self.kind = kind
        self.name = _WER_NAMES[kind]
        self.words = ErrorRate(language, "wer")

    def signature(self) -> str:
        tool = (f"meeteval:{_version('meeteval')}" if self.kind == "cpwer"
                else f"jiwer:{_version('jiwer')}")
        kind = "role-wer" if self.kind == "role" else self.kind
        return (f"{kind}|lang:{self.words.language}|norm:{self.words.normalize.__name__}"
                f"|per-turn|{tool}")

    def counts(self, reference: Conversation, hypothesis: Conversation) -> Alignment:
        """Edit counts of one recording."""
        streams = WordStreams.of(reference, hypothesis, self.words)
        if self.kind == "wer":
            return edit_counts([w.text for w in streams.reference],
                               [w.text for w in streams.hypothesis])
        if self.kind == "role":
            return role_counts(streams.reference, streams.hypothesis)
        return _cpwer(streams.reference, streams.hypothesis)[0]

    def corpus_score(self, hypotheses: Sequence[Conversation],
                     references: Sequence[Conversation]) -> Score:
        check_lengths(hypotheses, references)
        total = Alignment(0, 0, 0, 0)
        for hypothesis, reference in zip(hypotheses, references, strict=True):
            total = _add(total, self.counts(reference, hypothesis))
        if total.reference_length == 0:
            raise ValueError("every reference transcript is empty after normalisation")
        return self._score(self.words.rate(total), hits=total.hits,
                           substitutions=total.substitutions, deletions=total.deletions,
                           insertions=total.insertions, reference_length=total.reference_length,
                           recordings=len(references))


# --------------------------------------------------------------------------- roles

AccuracyKind = Literal["speaker", "word", "time"]


@dataclass(frozen=True)
class SpeakerRole:
    """A hypothesis speaker's role against the reference speaker it maps to."""

    speaker: str
    role: Role | None
    maps_to: str | None
    reference_role: Role | None

    @property
    def right(self) -> bool:
        return self.maps_to is not None and self.role == self.reference_role


def majority_roles(conversation: Conversation) -> dict[str, Role | None]:
    """Each speaker's most frequent role, weighted by time (timeline) or else by words."""
    weights: dict[str, dict[Role | None, float]] = defaultdict(lambda: defaultdict(float))
    if conversation.timeline is not None:
        for turn in conversation.timeline:
            weights[turn.speaker][turn.role] += turn.end - turn.start
    else:
        assert conversation.transcript is not None
        for text_turn in conversation.transcript:
            weights[text_turn.speaker][text_turn.role] += max(1, len(text_turn.text.split()))
    return {speaker: max(counts, key=lambda role: counts[role])
            for speaker, counts in weights.items()}


def speaker_roles(reference: Conversation, hypothesis: Conversation,
                  language: str = "en") -> list[SpeakerRole]:
    """Every hypothesis speaker with its role, its reference speaker and that one's role."""
    mapping = speaker_mapping(reference, hypothesis, language)
    reference_roles = majority_roles(reference)
    return [SpeakerRole(speaker, role, mapping.get(speaker),
                        reference_roles.get(mapping[speaker]) if speaker in mapping else None)
            for speaker, role in sorted(majority_roles(hypothesis).items())]


def word_role_agreement(reference: Sequence[Word], hypothesis: Sequence[Word]
                        ) -> tuple[int, int]:
    """(aligned word pairs whose roles agree, aligned word pairs) under the plain-WER
    alignment (hits and substitutions)."""
    if not reference or not hypothesis:
        return 0, 0
    out = jiwer.process_words(" ".join(w.text for w in reference),
                              " ".join(w.text for w in hypothesis))
    agree = total = 0
    for chunk in out.alignments[0]:
        if chunk.type not in ("equal", "substitute"):
            continue
        for offset in range(chunk.ref_end_idx - chunk.ref_start_idx):
            total += 1
            agree += (reference[chunk.ref_start_idx + offset].role
                      == hypothesis[chunk.hyp_start_idx + offset].role)
    return agree, total


def time_role_agreement(reference: Sequence[TimedTurn], hypothesis: Sequence[TimedTurn]
                        ) -> tuple[float, float]:
    """(seconds where overlapping reference and hypothesis turns agree on the role, seconds
    of overlap between reference and hypothesis turns)."""
    agree = total = 0.0
    hyp = merge_overlaps(hypothesis)
    for ref in merge_overlaps(reference):
        for turn in hyp:
            if turn.start >= ref.end:
                break
            overlap = min(ref.end, turn.end) - max(ref.start, turn.start)
            if overlap > 0:
                total += overlap
                agree += overlap if turn.role == ref.role else 0.0
    return agree, total


class RoleAccuracy(Metric):
    """Share of speakers, aligned words or overlapping time whose role is right (0–100)."""

    higher_is_better = True

    def __init__(self, kind: AccuracyKind, language: str = "en") -> None:
        self.kind = kind
        self.name = {"speaker": "role-acc/speaker", "word": "role-acc/word",
                     "time": "role-acc/time"}[kind]
        self.words = ErrorRate(language, "wer")

    def signature(self) -> str:
        extra = {"speaker": "map:der-else-cpwer|unmapped:excluded",
                 "word": f"align:plain-wer|norm:{self.words.normalize.__name__}",
                 "time": "overlap-weighted"}[self.kind]
        return f"role-accuracy|{self.kind}|{extra}"

    def agreement(self, reference: Conversation, hypothesis: Conversation
                  ) -> tuple[float, float, int]:
        """(right, scored, unmapped hypothesis speakers) of one recording; right and scored
        count speakers, aligned words or seconds."""
        if self.kind == "speaker":
            found = speaker_roles(reference, hypothesis, self.words.language)
            mapped = [s for s in found if s.maps_to is not None]
            return float(sum(s.right for s in mapped)), float(len(mapped)), \
                len(found) - len(mapped)
        if self.kind == "word":
            streams = WordStreams.of(reference, hypothesis, self.words)
            agree, total = word_role_agreement(streams.reference, streams.hypothesis)
            return float(agree), float(total), 0
        assert reference.timeline is not None and hypothesis.timeline is not None
        return (*time_role_agreement(reference.timeline, hypothesis.timeline), 0)

    def corpus_score(self, hypotheses: Sequence[Conversation],
                     references: Sequence[Conversation]) -> Score:
        check_lengths(hypotheses, references)
        right = scored = 0.0
        unmapped = 0
        for hypothesis, reference in zip(hypotheses, references, strict=True):
            a, b, c = self.agreement(reference, hypothesis)
            right, scored, unmapped = right + a, scored + b, unmapped + c
        if scored == 0:
            raise ValueError("nothing to score: no speaker, word or time pairs the hypothesis "
                             "with the reference")
        if self.kind == "time":
            return self._score(100 * right / scored, right=round(right, 3),
                               seconds=round(scored, 3), recordings=len(references))
        extra = {"unmapped_speakers": unmapped} if self.kind == "speaker" else {}
        return self._score(100 * right / scored, right=int(right),
                           **{f"{self.kind}s": int(scored)}, **extra,
                           recordings=len(references))


def has_roles(conversation: Conversation) -> bool:
    """Whether any turn of the conversation has a role."""
    turns: Sequence[TimedTurn | TextTurn] = (conversation.timeline or ()) + (
        conversation.transcript or ())
    return any(turn.role is not None for turn in turns)


def role_table(found: Sequence[SpeakerRole]) -> Mapping[str, dict[str, str | bool | None]]:
    """Speaker roles as a JSON-ready table for a report's items."""
    return {s.speaker: {"role": s.role, "maps_to": s.maps_to,
                        "reference_role": s.reference_role, "right": s.right} for s in found}
