"""Long turns live: a monologue is finalised sentence by sentence, and a final whose entity
recognition or translation fails is still sent."""

from __future__ import annotations

import dataclasses
import itertools
import re
import threading
from concurrent.futures import Future
from pathlib import Path
from typing import Any, cast

import numpy as np
import pytest

from eval.wer import error_rate
from speech.audio import SAMPLE_RATE, load_audio
from speech.online import OnlineTranscriber, StreamOptions, decode_jobs, replay
from speech.types import Segment
from streaming.annotate import EntityAnnotator
from streaming.live.engine import Engine, EngineConfig, Stages
from streaming.live.pcm import encode_pcm
from streaming.live.protocol import End, Error, Final, Message, Start
from tests.conftest import speak
from tests.scripted import Scripted, monologue

MONOLOGUE = ["The pain started on Monday morning while I was at work.",
             "It spreads to my left arm when I climb the stairs at home.",
             "I also feel short of breath and a little dizzy in the evenings.",
             "My father had a heart attack when he was sixty years old.",
             "I take aspirin and a statin every day with breakfast.",
             "Last week I stopped smoking because my daughter asked me to.",
             "I sleep badly and wake up tired most mornings."]


@pytest.mark.slow
def test_a_long_monologue_is_finalised_sentence_by_sentence(tiny_en: Any,
                                                            tmp_path: Path) -> None:
    """27 s of speech without a pause the VAD would end it at (espeak-ng, one voice): several
    finals, each ending at a sentence end, in order, together covering the audio once."""
    audio = load_audio(speak(" ".join(MONOLOGUE), tmp_path / "monologue.wav"))
    assert len(audio) / SAMPLE_RATE > 25
    stream = OnlineTranscriber(StreamOptions(language="en"))
    finals: list[Segment] = [u.segment for u in replay(
        stream, audio, lambda job: decode_jobs(tiny_en, [job])[0]) if u.segment.is_final]
    assert stream.done
    assert len(finals) >= 4, [f.text for f in finals]
    assert all(re.search(r"[.?!]$", f.text) for f in finals), [f.text for f in finals]
    assert [f.id for f in finals] == list(range(len(finals)))
    # Each final starts where the one before it ended: the audio is covered once, no gap.
    assert all(abs(a.end - b.start) < 1e-6 for a, b in itertools.pairwise(finals))
    assert finals[-1].end >= len(audio) / SAMPLE_RATE - 0.6
    said = " ".join(f.text for f in finals)
    assert error_rate([" ".join(MONOLOGUE)], [said]).score < 20, said
    counts = [len(re.findall(word, said, re.IGNORECASE)) for word in (
        "Monday", "stairs", "dizzy", "father", "aspirin", "daughter", "mornings")]
    # Never twice (no audio finalised twice); tiny.en may mishear one ("stairnet home").
    assert max(counts) == 1 and counts.count(1) >= 6, (counts, said)


# -- enrichment failures (fast: scripted recogniser) -------------------------------------------
class _Broken:
    """An entity annotator that always fails."""

    def annotate(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the tagger fell over")


def _serve(engine: Engine[Any, Any], start: Start, seconds: float) -> list[Message]:
    """Stream ``seconds`` of (silent: the VAD is scripted) audio; every event, futures
    resolved, in order."""
    events: list[Message | Future[list[Message]]] = []
    ended = threading.Event()

    def deliver(item: Message | Future[list[Message]]) -> None:
        events.append(item)
        if isinstance(item, End):
            ended.set()

    session = engine.open(start, deliver)
    frame = encode_pcm(np.zeros(1600, np.float32))
    for _ in range(round(seconds * 10)):
        engine.feed(session, frame)
    engine.stop(session)
    assert ended.wait(30)
    out: list[Message] = []
    for item in events:
        out += item.result(timeout=30) if isinstance(item, Future) else [item]
    return out


@pytest.mark.parametrize("stage", ["entities", "translation"])
def test_a_final_goes_out_when_its_enrichment_fails(stage: str,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    sentences = ["The chest pain began yesterday.", "It gets worse when I walk."]
    words = monologue(sentences)
    end = words[-1].end
    engine: Engine[Any, Any] = Engine(
        Scripted(words, 0.3, end + 0.5),
        Stages(annotator=cast(EntityAnnotator, _Broken()) if stage == "entities" else None))
    if stage == "translation":
        from streaming.enrich import SegmentEnrichment

        def broken(*args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("the translator fell over")

        monkeypatch.setattr(SegmentEnrichment, "active", property(lambda self: True))
        monkeypatch.setattr(SegmentEnrichment, "translate", broken)
    try:
        start = Start(type="start", language="en", entities=stage == "entities")
        events = _serve(engine, start, end + 2)
    finally:
        engine.shutdown()
    finals = [e for e in events if isinstance(e, Final)]
    assert finals and " ".join(f.text for f in finals) == " ".join(sentences)  # all there
    assert all(f.entities is None and f.translation is None for f in finals)
    errors = [e for e in events if isinstance(e, Error)]
    name = "entity recognition" if stage == "entities" else "translation"
    assert [e.message for e in errors] == [f"{name} of final {f.segment} failed; it is sent "
                                           "without it" for f in finals]
    assert not any(e.fatal for e in errors)
    # Each error comes right after its final.
    for final, error in zip(finals, errors, strict=True):
        assert events.index(error) == events.index(final) + 1


def test_a_client_asks_for_the_trailing_hold_and_sentence_wait_in_its_start_message() -> None:
    """``settings.trailing_hold`` and ``settings.sentence_wait`` reach the stream's options
    (off unless asked for)."""
    words = monologue(["The chest pain began yesterday."])
    engine: Engine[Any, Any] = Engine(Scripted(words, 0.3, words[-1].end + 0.5), Stages())
    try:
        held = engine.open(Start.model_validate(
            {"type": "start", "language": "en",
             "settings": {"trailing_hold": 1.0, "sentence_wait": 0.5}}),
            lambda item: None)
        plain = engine.open(Start(type="start", language="en"), lambda item: None)
        options = [cast(OnlineTranscriber, s.transcriber).options for s in (held, plain)]
        assert [o.trailing_hold for o in options] == [1.0, 0.0]
        assert [o.sentence_wait for o in options] == [0.5, 0.0]
        engine.stop(held)
        engine.stop(plain)
    finally:
        engine.shutdown()


class _NoEarlyFinals(Scripted):
    """Every final is a final decode: no early final (a partial decoded as a final in a
    silence, whose result becomes the final if the silence ends the utterance) can stand in for
    it, whichever of the feed and the scheduler runs first."""

    def open_stream(self, options: StreamOptions) -> OnlineTranscriber:
        return super().open_stream(dataclasses.replace(options, early_final=None))


def test_the_engine_counts_the_finals_it_decoded_in_a_hurry() -> None:
    """Finals decoded the faster, less accurate way (the server was behind) are counted, so
    that a benchmark can tell them from the policy's own errors."""
    sentences = ["The chest pain began yesterday.", "It gets worse when I walk."]
    words = monologue(sentences)
    counts = []
    for behind in (1e9, -1.0):  # never behind; behind whenever a final is waiting
        engine: Engine[Any, Any] = Engine(_NoEarlyFinals(words, 0.3, words[-1].end + 0.5),
                                          Stages(),
                                          config=EngineConfig(hurry_backlog=behind))
        try:
            finals = [e for e in _serve(engine, Start(type="start", language="en"),
                                        words[-1].end + 2) if isinstance(e, Final)]
            counts.append((engine.metrics()["hurried_decodes"],
                           " ".join(f.text for f in finals)))
        finally:
            engine.shutdown()
    assert counts[0] == (0, " ".join(sentences))
    assert counts[1][0] >= 1 and counts[1][1] == counts[0][1]
