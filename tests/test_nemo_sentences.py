"""NeMo streams end a final at a sentence end where the speaker paused (fast: no model).

A stand-in backend gives the text a cache-aware model would have decoded so far (the scripted
words heard up to the decoded frame), chunk by chunk with a look-ahead, so that only the
stream's policy is under test: where it closes an utterance, and that no audio is lost.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from speech.audio import SAMPLE_RATE
from speech.backends.nemo_streaming import ChunkJob, ChunkResult, NemoStream, _NemoUtterance
from speech.online import StreamOptions
from speech.types import Segment, Word
from tests.scripted import PAUSE, ScriptedVad, monologue, stream_silence

SHIFT, LOOK_AHEAD = 8, 4
"""Frames (10 ms) a chunk decodes, and frames more it reads."""


class _Heard:
    """What a NeMo backend offers a stream, hearing ``words`` (stream clock)."""

    hop, n_fft, language = 160, 400, "en"

    def __init__(self, words: list[Word]) -> None:
        self.words = words

    def chunk(self, stream: NemoStream, utterance: _NemoUtterance) -> ChunkJob | None:
        ended = utterance.end is not None
        heard = utterance.samples // self.hop + 1
        begin = utterance.frames_done
        if not ended and heard < begin + SHIFT + LOOK_AHEAD:
            return None
        first = utterance.step == 0
        if ended and begin >= heard:
            return ChunkJob(stream, utterance, None, 0, first, True, 0)
        return ChunkJob(stream, utterance, object(), 0, first, ended and begin + SHIFT >= heard,
                        SHIFT, min(heard, begin + SHIFT + LOOK_AHEAD))

    def decode(self, jobs: Sequence[ChunkJob]) -> list[ChunkResult]:
        results = []
        for job in jobs:
            start = job.utterance.start / SAMPLE_RATE
            until = start + (job.utterance.frames_done + job.shift) * self.hop / SAMPLE_RATE
            text = "".join(w.text for w in self.words if start <= w.start and w.end <= until)
            results.append(ChunkResult(text.strip(), (None, None, None), None))
        return results


def _finals(sentences: list[str], options: StreamOptions) -> list[tuple[float, Segment]]:
    """The finals of one turn of ``sentences`` (0.4 s pauses between them), each with the
    audio received when it came."""
    words = monologue(sentences, gap=0.4)
    backend = _Heard(words)
    stream = NemoStream(backend, options)  # type: ignore[arg-type]
    pauses = [(round(a.end * SAMPLE_RATE), round(b.start * SAMPLE_RATE))
              for a, b in itertools.pairwise(words) if b.start - a.end >= PAUSE]
    end = words[-1].end + 0.1
    stream.vad = ScriptedVad(round(0.3 * SAMPLE_RATE), round(end * SAMPLE_RATE),  # type: ignore[assignment]
                             pauses)
    updates = stream_silence(stream, lambda job: backend.decode([job])[0], end + 1)
    return [(at, u.segment) for at, u in updates if u.segment.is_final]


SENTENCES = ["The pain started on Monday.", "It spreads to my left arm.",
             "I also feel dizzy."]


def test_a_sentence_ends_a_final_where_the_speaker_paused() -> None:
    finals = _finals(SENTENCES, StreamOptions(language="en"))
    assert [f.text for _, f in finals] == SENTENCES
    words = monologue(SENTENCES, gap=0.4)
    pauses = [(a.end, b.start) for a, b in itertools.pairwise(words) if a.text.endswith(".")]
    for (at, final), (end, resumed) in zip(finals[:-1], pauses, strict=True):
        assert end < final.end <= resumed  # closed inside the pause, on what was decoded then
        assert at <= resumed + 0.2, (final.text, at, resumed)  # not at the end of the turn
    assert all(a.end == b.start for (_, a), (_, b) in itertools.pairwise(finals))  # no gap


def test_without_the_pause_rule_or_punctuation_the_turn_is_one_final() -> None:
    assert len(_finals(SENTENCES, StreamOptions(language="en", pause_end=None))) == 1
    bare = [s.rstrip(".") for s in SENTENCES]
    assert [f.text for _, f in _finals(bare, StreamOptions(language="en"))] == [" ".join(bare)]
