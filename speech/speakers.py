"""Words to speakers: recognised segments against a diarization, and speakers of live utterances.

:func:`assign_speakers` gives every recognised word the speaker whose turn covers it (word
timestamps against the diarization's timeline), gives a lone word inside a sentence that is
mostly another speaker's that speaker (Whisper's word times are rough where turns change), and
splits a segment where the speaker changes inside it, so that every segment has exactly one
speaker; :func:`assign_speakers_with_origins` also says which segment each piece came from, and
:func:`joined_pieces` joins them back.

:class:`OnlineSpeakers` decides the speaker of each utterance of a live session as it comes:
its embedding against the running mean embedding of each speaker so far, a new speaker when
none is close enough.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import replace
from typing import Protocol

import numpy as np

from speech.diarization import SpeakerTurn
from speech.types import Segment, Word

SENTENCE_RUN: int | None = 1
"""Words a run of one speaker's words may have at most, inside a sentence (Whisper's
punctuation) most of whose speech another speaker has, and still be given to that speaker
(None: every word keeps the speaker of its own times). Whisper's word times are rough where a
turn changes: the first word of an answer often starts where the question ended ("vomiting?
Yeah," with "Yeah," over 1.2 s before the patient's turn), and a short piece of a turn may get
the wrong speaker; a sentence is one speaker's far more often than the times say. Chosen on
the OSCE interviews CAR0001 and GAS0001 (Whisper base, 2 speakers; cpWER summed 34.59 without
the rule, 32.96 with runs of 1 word, 33.05 with 2, more with longer runs); on CAR0002 and
MSK0001 cpWER went 13.87 → 13.40 and 13.68 → 13.27 (README, speakers section)."""


def assign_speakers(segments: Sequence[Segment], turns: Sequence[SpeakerTurn], *,
                    sentence_run: int | None = SENTENCE_RUN) -> list[Segment]:
    """``segments`` with a speaker each, split where the speaker changes inside one.

    A word gets the speaker of the turn that overlaps it most, or of the nearest turn when none
    overlaps it; then a run of at most ``sentence_run`` words of one speaker inside a sentence
    whose speech is mostly another speaker's (by the words' durations) gets that speaker
    (:data:`SENTENCE_RUN`). A segment without words gets the speaker that overlaps it most (or
    the nearest). A split segment's pieces keep their words, their text is their words' text
    joined (Whisper's words carry their leading space), the first piece starts where the
    segment did and the last ends where it did; pieces meet at the first word of the next
    piece. Speaker ids are the turns' ids; segment ids are renumbered 0, 1, … in order.
    Raises ValueError when there are no turns: nobody to assign.
    """
    return assign_speakers_with_origins(segments, turns, sentence_run=sentence_run)[0]


def assign_speakers_with_origins(segments: Sequence[Segment], turns: Sequence[SpeakerTurn], *,
                                 sentence_run: int | None = SENTENCE_RUN
                                 ) -> tuple[list[Segment], list[int]]:
    """:func:`assign_speakers`, and for each piece the index of the segment of ``segments``
    it was cut from (what :func:`joined_pieces` joins back)."""
    if not turns:
        raise ValueError("no speaker turns to assign segments to")
    ordered = sorted(turns, key=lambda turn: (turn.start, turn.end))
    words = [word for segment in segments for word in segment.words]
    speakers = [_speaker_of(word.start, word.end, ordered) for word in words]
    if sentence_run:
        speakers = _by_sentence(words, speakers, sentence_run)
    pieces: list[Segment] = []
    origins: list[int] = []
    at = 0
    for origin, segment in enumerate(segments):
        if not segment.words:
            mine = [replace(segment, speaker=_speaker_of(segment.start, segment.end, ordered))]
        else:
            mine = _split(segment, speakers[at:at + len(segment.words)])
            at += len(segment.words)
        pieces.extend(mine)
        origins.extend([origin] * len(mine))
    return [replace(piece, id=index) for index, piece in enumerate(pieces)], origins


def joined_pieces(pieces: Sequence[Segment], origins: Sequence[int]) -> list[Segment]:
    """The segments ``pieces`` were cut from (:func:`assign_speakers_with_origins`), without
    speakers: the pieces of one segment joined, their words and times as the recogniser gave
    them (the text of a segment that was split is its words' text joined, as its pieces'
    texts were)."""
    if len(pieces) != len(origins):
        raise ValueError(f"{len(pieces)} pieces but {len(origins)} origins")
    segments = []
    for number, (_, run) in enumerate(itertools.groupby(zip(origins, pieces, strict=True),
                                                        key=lambda pair: pair[0])):
        group = [piece for _, piece in run]
        first = group[0]
        if len(group) > 1:
            words = tuple(word for piece in group for word in piece.words)
            first = replace(first, end=group[-1].end, words=words,
                            text="".join(word.text for word in words).strip())
        segments.append(replace(first, id=number, speaker=None))
    return segments


def _by_sentence(words: Sequence[Word], speakers: list[str], most: int) -> list[str]:
    """``speakers`` (one per word) with each run of at most ``most`` words given the speaker
    of most of its sentence's speech, when that is another speaker."""
    smoothed = list(speakers)
    begin = 0
    for end, word in enumerate(words, start=1):
        if not word.ends_sentence and end < len(words):
            continue
        talk: dict[str, float] = {}
        for index in range(begin, end):
            talk[speakers[index]] = talk.get(speakers[index], 0.0) + max(
                words[index].end - words[index].start, 0.01)
        main = max(talk, key=lambda speaker: talk[speaker])
        index = begin
        while index < end:
            run = index
            while run < end and speakers[run] == speakers[index]:
                run += 1
            if speakers[index] != main and run - index <= most:
                smoothed[index:run] = [main] * (run - index)
            index = run
        begin = end
    return smoothed


def _split(segment: Segment, speakers: Sequence[str]) -> list[Segment]:
    """The segment cut into runs of words of one speaker (``speakers``: one per word)."""
    runs: list[tuple[str, list[Word]]] = []
    for word, speaker in zip(segment.words, speakers, strict=True):
        if runs and runs[-1][0] == speaker:
            runs[-1][1].append(word)
        else:
            runs.append((speaker, [word]))
    if len(runs) == 1:
        return [replace(segment, speaker=runs[0][0])]
    pieces = []
    for index, (speaker, run_words) in enumerate(runs):
        start = segment.start if index == 0 else run_words[0].start
        end = segment.end if index == len(runs) - 1 else runs[index + 1][1][0].start
        pieces.append(replace(segment, start=start, end=max(start, end), speaker=speaker,
                              text="".join(word.text for word in run_words).strip(),
                              words=tuple(run_words)))
    return pieces


def _speaker_of(start: float, end: float, turns: Sequence[SpeakerTurn]) -> str:
    """The speaker of the turn overlapping [start, end] most; the nearest turn when none does
    (an instant, a zero-length word, counts as overlapping the turns it lies in)."""
    best: tuple[float, float] | None = None
    speaker = turns[0].speaker
    for turn in turns:
        overlap = min(end, turn.end) - max(start, turn.start)
        gap = max(turn.start - end, start - turn.end, 0.0)
        # Larger overlap first, then smaller gap (an overlap of 0 with gap 0 is "touching").
        key = (max(overlap, 0.0), -gap)
        if best is None or key > best:
            best, speaker = key, turn.speaker
    return speaker


class Embedder(Protocol):
    """What gives a stretch of audio a speaker embedding (:class:`speech.diarization.Diarizer`)."""

    def embed(self, audio: np.ndarray) -> np.ndarray:
        """One L2-normalised speaker embedding of ``audio`` (16 kHz mono float32)."""
        ...


DEFAULT_THRESHOLD = 0.60
"""Cosine similarity to a speaker's mean embedding from which an utterance is theirs, chosen on
real speech: utterances (≥ 1 s, the middle ≤ 4.5 s) of two OSCE interviews, labelled by the
batch diarization whose roles match the transcripts (CAR0001, GAS0001: accuracy 1.00 and 0.90
at 0.60, against 0.94 and 0.68 at 0.75, which the synthetic espeak-ng voices favoured), and
reported on two others (CAR0002 0.98, MSK0001 0.92; 2 and 3 speakers), with a real monologue
(JFK) kept as one speaker. Over 0.65 real speakers split into many; under 0.55 two merge."""


class OnlineSpeakers:
    """The speakers of one live session, decided utterance by utterance.

    Each utterance's embedding is compared (cosine) with every speaker's running mean
    embedding; the closest speaker gets it when at least ``threshold`` close, otherwise a new
    speaker ``S<k>`` appears, unless ``max_speakers`` are there already (then the closest gets
    it). Not thread-safe: one session, one caller at a time.
    """

    def __init__(self, embedder: Embedder, *, threshold: float = DEFAULT_THRESHOLD,
                 max_speakers: int | None = None) -> None:
        if max_speakers is not None and max_speakers < 1:
            raise ValueError(f"max_speakers must be at least 1, not {max_speakers}")
        if not -1.0 <= threshold <= 1.0:
            raise ValueError(f"the threshold is a cosine similarity in [-1, 1], not {threshold}")
        self.embedder = embedder
        self.threshold = threshold
        self.max_speakers = max_speakers
        self._sums: list[np.ndarray] = []
        self._counts: list[int] = []

    @property
    def speakers(self) -> list[str]:
        """The session's speakers so far, in order of appearance."""
        return [f"S{index + 1}" for index in range(len(self._sums))]

    def assign(self, audio: np.ndarray) -> tuple[str, float]:
        """The speaker of an utterance, and the cosine similarity of its embedding to that
        speaker's mean before it was added (1.0 for a speaker it creates)."""
        return self.assign_embedding(self.embedder.embed(audio))

    def assign_embedding(self, embedding: np.ndarray) -> tuple[str, float]:
        """:meth:`assign` for an utterance already embedded (L2-normalised)."""
        vector = np.asarray(embedding, dtype=np.float64).reshape(-1)
        norm = float(np.linalg.norm(vector))
        if norm == 0.0 or not np.isfinite(norm):
            raise ValueError("the utterance's embedding is zero or not finite")
        vector = vector / norm
        similarities = [float(vector @ total) / max(float(np.linalg.norm(total)), 1e-12)
                        for total in self._sums]
        best = int(np.argmax(similarities)) if similarities else -1
        full = self.max_speakers is not None and len(self._sums) >= self.max_speakers
        if best >= 0 and (similarities[best] >= self.threshold or full):
            self._sums[best] = self._sums[best] + vector
            self._counts[best] += 1
            return f"S{best + 1}", similarities[best]
        self._sums.append(vector)
        self._counts.append(1)
        return f"S{len(self._sums)}", 1.0
