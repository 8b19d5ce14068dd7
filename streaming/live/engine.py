"""The live engine: one recogniser shared by every session, a scheduler, and the final stages.

Every session's :class:`~speech.live.LiveStream` hands out decode jobs; one scheduler thread
runs them off the event loop, in rounds (:meth:`speech.live.LiveRecogniser.decode`). A round of
*finals* comes first whenever an utterance has ended: finals are what the interpreter reads and
translates. Otherwise a round of *partials* takes up to ``max_batch`` sessions, those still
waiting for the first words of an utterance first, then the ones served least recently, and
decodes their windows in one model call. Batching pays on CPU too: four short partial windows
decode 2.2 times faster together than one after the other (tiny.en, 2 cores), while full-window
finals gain nothing from it (1.07 times), so finals share a batch only on a GPU
(``batch_finals``). No session can starve the others. When finals queue up, the recogniser is
asked to hurry (Whisper: 20 s of encoder context instead of 30 s for finals).
Audio is never dropped: a session that the scheduler cannot keep up with accumulates a backlog,
is told so (``status: lagging``), and catches up on its next turn.

Audio reaches a session's stream through :meth:`Engine.feed`, which the server calls off its
event loop: the stream's VAD runs there, outside the scheduler's lock (it touches nothing the
scheduler reads), and only the routing of the heard audio into utterances takes the lock.

Finals then go through the enrichment stage that batch transcripts go through
(:class:`streaming.enrich.SegmentEnrichment`: entities, then translation) on a worker thread of
their own, so the recogniser is never held up by them; a session's events still reach its
client in order. The same thread decides who said each final
(:mod:`streaming.live.speakers`: the speaker embedding of its audio, which the session keeps
until the final is out, and the roles over the session so far), and sends ``update`` events
for earlier finals that this changes, right after the final.
"""

from __future__ import annotations

import itertools
import logging
import sys
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Generic, cast, overload

import numpy as np

from ner.abbreviations import AbbreviationMemory
from ner.types import Entity
from speech.audio import SAMPLE_RATE
from speech.live import JobT, LiveRecogniser, LiveStream, ResultT, StreamState, as_live
from speech.online import DecodeJob, Recogniser, StreamOptions, StreamUpdate, WindowResult
from speech.types import Segment
from streaming.annotate import EntityAnnotator
from streaming.enrich import SegmentEnrichment, TranslationTarget
from streaming.live.dialogue import LiveDialogue
from streaming.live.memory import release_when_freed
from streaming.live.pcm import PcmDecoder
from streaming.live.protocol import (
    End,
    Error,
    Final,
    Message,
    Partial,
    Start,
    Status,
    Update,
    WordOut,
)
from streaming.live.speakers import LiveSpeakers, SessionAudio, SpeakerModels
from streaming.translation import TextTranslation
from translate.protocol import TextTranslator
from translate.types import TranslateOptions, Translation

logger = logging.getLogger(__name__)

Delivery = Callable[["Message | Future[list[Message]]"], None]
"""Where a session's events go, in order; a Future stands for a final still being enriched
(and the updates of earlier finals that come with it)."""


class UnsupportedError(ValueError):
    """A start message asks for something this server cannot do."""


@dataclass(frozen=True)
class EngineConfig:
    max_batch: int = 4
    """Windows decoded in one model call (4 on CPU; 8-16 on a GPU)."""
    batch_finals: bool = False
    """Finals share a batch too (on a GPU); on CPU they are decoded one at a time."""
    hurry_backlog: float = 2.0
    """Backlog (seconds) of a session with a pending final, or finals waiting for more than
    one round, above which finals are decoded the faster way (see ``decode(hurry=True)``)."""
    lag_threshold: float = 3.0
    """Backlog (seconds) above which a session is told it is lagging."""
    status_interval: float = 2.0
    """Seconds between repeated ``lagging`` statuses."""


@dataclass
class Stages:
    """What happens to finals after recognition."""

    annotator: EntityAnnotator | None = None
    translator: TextTranslator | None = None
    glossaries: dict[str, TextTranslator] = field(default_factory=dict)
    """Translators with a glossary's terminology, by glossary id."""
    speakers: SpeakerModels | None = None
    """Speaker embedding and role models: who said each final of a single-language session
    (interpreter sessions need none: their languages say it)."""


@dataclass
class SessionStats:
    decodes: int = 0
    decode_seconds: float = 0.0
    partials: int = 0
    finals: int = 0


class LiveSession(Generic[JobT, ResultT]):
    """One client's stream inside the engine."""

    def __init__(self, start: Start, stream: LiveStream[JobT, ResultT], deliver: Delivery,
                 enrichment: SegmentEnrichment, speakers: LiveSpeakers | None = None,
                 speakers_by: str | None = None) -> None:
        self.id = uuid.uuid4().hex[:12]
        self.start = start
        self.deliver = deliver
        self.enrichment = enrichment
        """Entities and translation of the finals, as the start asked for them."""
        self.abbreviations = AbbreviationMemory()
        """Abbreviations defined in this session's finals (only the enrichment thread uses
        it, one final after another)."""
        self.speakers = speakers
        """Who said each final (None: finals carry no speaker); the enrichment thread's."""
        self.speakers_by = speakers_by
        """What decides the speakers (``ready.speakers``)."""
        self.audio = SessionAudio() if speakers is not None and speakers.by_voice else None
        """Recent audio, for the speaker embedding of each final."""
        self.dialogue = LiveDialogue() if speakers is not None and \
            enrichment.annotator is not None else None
        """Asked and denied entities, from the roles (the enrichment thread's)."""
        self.transcriber = stream
        self.pcm = PcmDecoder(start.encoding, start.sample_rate)
        self.stats = SessionStats()
        self.served = 0.0
        self.lagging = False
        self.last_status = 0.0
        self.ended = False
        self.closed = False

    @property
    def audio_time(self) -> float:
        return self.transcriber.received / SAMPLE_RATE


class Engine(Generic[JobT, ResultT]):
    """Serves any number of live sessions with one recogniser, whose jobs are ``JobT`` and
    results ``ResultT``."""

    @overload
    def __init__(self: Engine[DecodeJob, WindowResult], recogniser: Recogniser,
                 stages: Stages | None = None, config: EngineConfig | None = None, *,
                 name: str = "") -> None: ...

    @overload
    def __init__(self, recogniser: LiveRecogniser[JobT, ResultT], stages: Stages | None = None,
                 config: EngineConfig | None = None, *, name: str = "") -> None: ...

    def __init__(self, recogniser: LiveRecogniser[JobT, ResultT] | Recogniser,
                 stages: Stages | None = None, config: EngineConfig | None = None, *,
                 name: str = "") -> None:
        """``recogniser``: a :class:`~speech.live.LiveRecogniser`, or a Whisper backend."""
        # A Whisper backend is wrapped in WhisperLive: the first overload says this engine is
        # then an Engine[DecodeJob, WindowResult].
        self.recogniser = cast(LiveRecogniser[JobT, ResultT], as_live(recogniser))
        self.stages = stages or Stages()
        self.config = config or EngineConfig()
        self.name = name
        self._cond = threading.Condition()
        self._sessions: dict[str, LiveSession[JobT, ResultT]] = {}
        self._stopping = False
        self._enrich = ThreadPoolExecutor(1, thread_name_prefix="medstream-final",
                                          initializer=_one_core)
        self._thread = threading.Thread(target=self._run, name="medstream-scheduler",
                                        daemon=True)
        self._counter = itertools.count()
        self.totals = {"sessions": 0, "decodes": 0, "decode_seconds": 0.0, "audio_seconds": 0.0,
                       "finals": 0, "partials": 0, "errors": 0, "hurried_decodes": 0}
        self.busy_seconds = 0.0
        self._thread.start()

    # -- sessions -----------------------------------------------------------------------------
    def open(self, start: Start, deliver: Delivery) -> LiveSession[JobT, ResultT]:
        """Create a session for ``start`` (raises UnsupportedError when it cannot be served)."""
        self._check(start)
        translator = None
        wants_translation = bool(start.languages) or start.translate_to is not None
        if start.glossary is not None:
            if start.glossary not in self.stages.glossaries:
                known = ", ".join(sorted(self.stages.glossaries)) or "none"
                raise UnsupportedError(f"unknown glossary {start.glossary!r} (this server has: "
                                       f"{known})")
            translator = self.stages.glossaries[start.glossary]
        elif wants_translation:
            translator = self.stages.translator
        s = start.settings
        stream = self.recogniser.open_stream(StreamOptions(
            language=start.language, languages=tuple(start.languages), beam_size=s.beam_size,
            partial_interval=s.partial_interval, min_silence_ms=s.min_silence_ms,
            trailing_hold=s.trailing_hold, sentence_wait=s.sentence_wait,
            vocabulary=tuple(s.vocabulary)))
        release_when_freed(stream)  # its audio's memory goes back to the OS with it
        speakers, speakers_by = self._speakers(start)
        session = LiveSession(start, stream, deliver, self._enrichment(
            start, translator if wants_translation else None), speakers, speakers_by)
        with self._cond:
            self._sessions[session.id] = session
            self.totals["sessions"] += 1
        return session

    def _enrichment(self, start: Start, translator: TextTranslator | None) -> SegmentEnrichment:
        """The stage a session's finals go through, as ``start`` asks."""
        annotator = self.stages.annotator if start.entities else None
        if translator is None:
            return SegmentEnrichment(annotator)
        parties = (start.languages[0], start.languages[1]) if start.languages else None
        target = TranslationTarget(start.translate_to, parties)
        return SegmentEnrichment(annotator, TextTranslation(
            translator, target, TranslateOptions(terms=start.terms)))

    def _speakers(self, start: Start) -> tuple[LiveSpeakers | None, str | None]:
        """Who says a session's finals, and what decides it (None, None: nobody)."""
        if start.speakers is False or start.version < 2:
            return None, None
        if start.languages:
            parties = (start.languages[0], start.languages[1])
            return LiveSpeakers(parties=parties), "languages"
        models = self.stages.speakers
        if models is None:
            return None, None
        most = start.speakers if not isinstance(start.speakers, bool) else None
        return LiveSpeakers(models.session(most), models.roles), models.identifier

    def _check(self, start: Start) -> None:
        languages = [start.language, *start.languages]
        multilingual = self.recogniser.multilingual
        for language in languages:
            if language is not None and language != "en" and not multilingual:
                raise UnsupportedError(f"the recogniser is English-only; language "
                                       f"{language!r} needs a multilingual model")

    def feed(self, session: LiveSession[JobT, ResultT], frame: bytes) -> None:
        """Add a binary frame (raises FrameError for a malformed one; nothing is added).

        Runs the session's VAD: call it off the event loop, one frame of a session at a time
        and in order (the VAD runs outside the scheduler's lock, see the module docstring)."""
        samples = session.pcm.decode(frame)
        session.transcriber.listen(samples)
        self._accept(session, samples)

    def _accept(self, session: LiveSession[JobT, ResultT], samples: np.ndarray) -> None:
        with self._cond:
            session.transcriber.accept(samples)
            if session.audio is not None:
                session.audio.append(samples)
            self.totals["audio_seconds"] += len(samples) / SAMPLE_RATE
            self._report_lag(session)
            self._cond.notify()

    def stop(self, session: LiveSession[JobT, ResultT]) -> None:
        """No more audio: finalise, then deliver ``end`` (call it off the event loop, after
        the session's last :meth:`feed`)."""
        tail = session.pcm.flush()
        if len(tail) and not session.transcriber.finished:
            session.transcriber.listen(tail)
        with self._cond:
            if session.transcriber.finished:
                return
            if len(tail):
                session.transcriber.accept(tail)
                if session.audio is not None:
                    session.audio.append(tail)
            session.transcriber.finish()
            self._maybe_end(session, "stop")
            self._cond.notify()

    def close(self, session: LiveSession[JobT, ResultT]) -> None:
        """Forget a session (its client went away): pending work is dropped, resources freed."""
        with self._cond:
            session.closed = True
            self._forget(session)

    def shutdown(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._thread.join(timeout=30)
        self._enrich.shutdown(wait=True, cancel_futures=True)

    @property
    def sessions(self) -> int:
        with self._cond:
            return len(self._sessions)

    def backlog(self) -> float:
        """Largest backlog (seconds) of any session."""
        with self._cond:
            return max((s.transcriber.backlog for s in self._sessions.values()), default=0.0)

    # -- the scheduler --------------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            with self._cond:
                jobs, hurry = self._collect()
                while not jobs and not self._stopping:
                    self._cond.wait(timeout=0.5)
                    jobs, hurry = self._collect()
                if self._stopping:
                    return
            began = time.perf_counter()
            try:
                results = self.recogniser.decode(jobs, hurry=hurry)
            except Exception:  # a model failure must not take the other sessions down
                logger.exception("decoding failed; the sessions concerned are closed")
                self._fail([j.stream for j in jobs])
                continue
            spent = time.perf_counter() - began
            self.busy_seconds += spent
            with self._cond:
                self.totals["decodes"] += len(jobs)
                self.totals["decode_seconds"] += spent
                self.totals["hurried_decodes"] += len(jobs) if hurry else 0
                for job, result in zip(jobs, results, strict=True):
                    session = self._owner(job)
                    if session is None:
                        continue
                    session.stats.decodes += 1
                    session.stats.decode_seconds += spent / len(jobs)
                    updates = session.transcriber.complete(job, result)
                    for update in updates:
                        self._publish(session, update)
                    self._report_lag(session)
                    self._maybe_end(session, "stop")
            # The last job holds its stream (all of its session's audio) until the next
            # round: on an idle server, a closed session's memory would never be freed.
            del job, result, session

    def _collect(self) -> tuple[list[JobT], bool]:
        """The next round's jobs, and whether the recogniser should hurry."""
        sessions = [s for s in self._sessions.values() if not s.closed]
        now = time.monotonic()
        finals = sorted((s for s in sessions if s.transcriber.pending_final),
                        key=lambda s: s.served)
        limit = self.config.max_batch if self.config.batch_finals else 1
        jobs = self._take(finals, limit, now)
        if jobs:
            behind = max(s.transcriber.backlog for s in finals)
            return jobs, len(finals) > limit or behind > self.config.hurry_backlog
        sessions.sort(key=lambda s: (not s.transcriber.awaiting_words, s.served))
        return self._take(sessions, self.config.max_batch, now), False

    @staticmethod
    def _take(sessions: list[LiveSession[JobT, ResultT]], limit: int, now: float) -> list[JobT]:
        jobs: list[JobT] = []
        for session in sessions:
            if len(jobs) >= limit:
                break
            job = session.transcriber.next_job()
            if job is not None:
                session.served = now
                jobs.append(job)
        return jobs

    def _owner(self, job: JobT) -> LiveSession[JobT, ResultT] | None:
        for session in self._sessions.values():
            if session.transcriber is job.stream:
                return session
        return None

    def _fail(self, transcribers: list[StreamState]) -> None:
        with self._cond:
            for session in list(self._sessions.values()):
                if session.transcriber in transcribers:
                    self.totals["errors"] += 1
                    session.deliver(Error(code="internal", message="recognition failed; the "
                                          "session is closed", fatal=True))
                    session.deliver(End(reason="error", audio_seconds=session.audio_time,
                                        finals=session.stats.finals))
                    session.ended = True
                    self._forget(session)

    def _publish(self, session: LiveSession[JobT, ResultT], update: StreamUpdate) -> None:
        segment = update.segment
        if not segment.is_final:
            if not session.start.settings.partials:
                return
            session.stats.partials += 1
            self.totals["partials"] += 1
            session.deliver(Partial(utterance=update.utterance, start=segment.start,
                                    end=segment.end, text=segment.text, stable=update.stable,
                                    language=segment.language or "", audio_time=session.audio_time))
            return
        session.stats.finals += 1
        self.totals["finals"] += 1
        final = Final(utterance=update.utterance, segment=segment.id, start=segment.start,
                      end=segment.end, text=segment.text, language=segment.language or "",
                      words=[WordOut(start=w.start, end=w.end, text=w.text,
                                     probability=w.probability) for w in segment.words],
                      entities=None, translation=None, audio_time=session.audio_time)
        audio = None
        if session.audio is not None:
            audio = session.audio.take(segment.start, segment.end)
        if not session.enrichment.active and session.speakers is None:
            session.deliver(final)
            return
        session.deliver(self._enrich.submit(_enrich, session, final, segment, audio))

    def _report_lag(self, session: LiveSession[JobT, ResultT]) -> None:
        backlog = session.transcriber.backlog
        now = time.monotonic()
        lagging = backlog > self.config.lag_threshold or (
            session.lagging and backlog > self.config.lag_threshold / 2)
        repeat = lagging and now - session.last_status >= self.config.status_interval
        if lagging != session.lagging or repeat:
            session.lagging = lagging
            session.last_status = now
            session.deliver(Status(state="lagging" if lagging else "ok",
                                   backlog=round(backlog, 2), audio_time=session.audio_time))

    def _maybe_end(self, session: LiveSession[JobT, ResultT], reason: str) -> None:
        if session.transcriber.done and not session.ended:
            session.ended = True
            session.deliver(End(reason="stop", audio_seconds=round(session.audio_time, 3),
                                finals=session.stats.finals))
            self._forget(session)

    def _forget(self, session: LiveSession[JobT, ResultT]) -> None:
        """Drop a session that ended or was closed (under the lock). Its delivery, a method of
        the client's connection, which holds the session, is cut too: without that cycle the
        session, and its audio, are freed as soon as the connection is, not at the next
        garbage collection (minutes away on a quiet server)."""
        self._sessions.pop(session.id, None)
        session.deliver = _nowhere

    def metrics(self) -> dict[str, float]:
        with self._cond:
            return {**self.totals, "active_sessions": len(self._sessions),
                    "max_backlog_seconds": max(
                        (s.transcriber.backlog for s in self._sessions.values()), default=0.0)}


def _nowhere(item: Message | Future[list[Message]]) -> None:
    """The delivery of a session that is over: its client is gone or has had ``end``."""


def _one_core() -> None:
    """The enrichment thread runs its torch models (the NER tagger, the speaker embedding) on
    one core: with OpenMP's default of every core they spin against the recogniser and each
    other. Measured on the shared 2-core machine under load: CAM++ on a 3 s final took 3.2-3.5 s
    of CPU with two threads and 0.17 s with one. (torch's thread count is per thread: the
    other threads keep theirs.)"""
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(1)


def _enrich(session: LiveSession[JobT, ResultT], final: Final, segment: Segment,
            audio: np.ndarray | None) -> list[Message]:
    """Entities, translation and speaker of a final, the recogniser's ``segment`` (its
    ``audio``: None when the session has none for it), then the updates of earlier finals that
    it causes (runs on the enrichment thread). A stage that fails leaves its part out and an
    ``error`` event after the final says so: the final's text always goes out."""
    entities, translation, failed = _enriched(session, segment, final.language)
    final = final.model_copy(update={
        "entities": [e.to_dict() for e in entities] if entities is not None else None,
        "translation": translation.to_dict() if translation is not None else None})
    notes: list[Message] = [Error(code="internal", message=f"{stage} of final "
                                  f"{final.segment} failed; it is sent without it")
                            for stage in failed]
    if session.speakers is None:
        return [final, *notes]
    try:
        return [*_attribute(session, final, audio, entities), *notes]
    except Exception:  # the final still goes out, without a speaker
        logger.exception("telling the speaker of a final failed")
        return [final, *notes, Error(code="internal", message=f"the speaker of final "
                                     f"{final.segment} could not be told; it has none")]


def _enriched(session: LiveSession[JobT, ResultT], segment: Segment, language: str
              ) -> tuple[tuple[Entity, ...] | None, Translation | None, list[str]]:
    """The entities and translation of one final, as :meth:`SegmentEnrichment.enrich` makes
    them, except that a stage that raises is left out (logged, and named in the list)."""
    enrichment, failed = session.enrichment, []
    entities = None
    try:
        found = enrichment.annotate([segment], language, session.abbreviations)
        entities = found.per_segment[0] if found is not None else None
    except Exception:
        logger.exception("entity recognition of a live final failed")
        failed.append("entity recognition")
    translation = None
    try:
        translations = enrichment.translate([segment], language,
                                            [entities] if entities is not None else None)
        translation = translations[0] if translations is not None else None
    except Exception:
        logger.exception("translation of a live final failed")
        failed.append("translation")
    return entities, translation, failed


def _attribute(session: LiveSession[JobT, ResultT], final: Final, audio: np.ndarray | None,
               entities: tuple[Entity, ...] | None) -> list[Message]:
    """``final`` with its speaker and role (and its entities' dialogue marks), then an update
    for each earlier final whose speaker, role or marks this changes, in final order."""
    speakers = session.speakers
    assert speakers is not None
    attribution, changed = speakers.add(final.segment, final.text, final.language, audio)
    final = final.model_copy(update={"speaker": attribution.speaker, "role": attribution.role})
    marks: dict[int, tuple[Entity, ...]] = {}
    if session.dialogue is not None and entities is not None:
        marked, marks = session.dialogue.add(
            final.segment, attribution.role, final.text, entities,
            {earlier: now.role for earlier, now in changed.items()})
        final = final.model_copy(update={"entities": [e.to_dict() for e in marked]})
    updates: list[Message] = []
    for earlier in sorted({*changed, *marks}):
        now = speakers.told(earlier)
        updated = marks.get(earlier)
        updates.append(Update(segment=earlier, speaker=now.speaker, role=now.role,
                              entities=[e.to_dict() for e in updated] if updated is not None
                              else None, audio_time=final.audio_time))
    return [final, *updates]
