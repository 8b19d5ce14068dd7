"""Batch transcription of files and folders: discovery, resume, per-file errors, concurrency.

One model serves the whole batch. Several files can be in flight at once, each in its own
thread: decoding (PyAV) and inference (CTranslate2) release the GIL, so one file's decoding
overlaps with another's recognition, and on a small CPU two single-threaded transcriptions use
the cores better than one two-threaded transcription.

The work on one file is a chain of stages (:class:`FileStages`: prepare, recognise, diarize,
annotate, translate, finish) that pass a :class:`FileWork` along. Here one thread runs the whole
chain; :mod:`streaming.batch.ray_job` runs the same stages in Ray tasks and actors, which is why
both modes write the same outputs and resume the same way.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from speech.audio import (
    AUDIO_EXTENSIONS,
    SAMPLE_RATE,
    decode_checked,
    load_audio,
    probe_duration,
)
from speech.backends.base import ASRBackend
from speech.backends.faster_whisper import speech_runs
from speech.chunking import Span
from speech.errors import MedstreamError
from speech.options import TranscribeOptions
from speech.types import Segment
from streaming.batch.writers import FORMATS, RENDERERS, render_txt, write_outputs
from streaming.document import (
    SourceFile,
    TranscriptDocument,
    TranslationMethod,
    settings_fingerprint,
)
from streaming.enrich import SegmentEnrichment
from streaming.speakers import mark_dialogue_turns, marked_fingerprint, without_speakers

if TYPE_CHECKING:  # at run time, prepare tasks on Ray workers do not need it (nor torch)
    from streaming.annotate import EntityAnnotator
    from streaming.enrich import SegmentTranslator
    from streaming.speakers import SpeakerStage

logger = logging.getLogger(__name__)

Status = Literal["done", "skipped", "failed", "interrupted"]


class _StopRequestedError(Exception):
    """Raised inside a worker when the batch is being stopped."""


@dataclass(frozen=True)
class InputFile:
    """A recording to transcribe and the output stem (path without extension) it maps to."""

    path: Path
    stem: Path
    """Relative to the output folder."""


@dataclass(frozen=True)
class FileOutcome:
    """What happened to one input."""

    input: InputFile
    status: Status
    audio_seconds: float = 0.0
    wall_seconds: float = 0.0
    language: str | None = None
    text: str = ""
    error: str | None = None
    outputs: tuple[Path, ...] = ()
    warning: str | None = None
    """The recording decoded only in part (truncated or damaged: what, with the decoded and
    the declared duration); its transcript holds what could be decoded."""


@dataclass
class BatchSummary:
    outcomes: list[FileOutcome] = field(default_factory=list)
    interrupted: bool = False

    def count(self, status: Status) -> int:
        return sum(1 for o in self.outcomes if o.status == status)

    @property
    def failed(self) -> list[FileOutcome]:
        return [o for o in self.outcomes if o.status == "failed"]


class ProgressListener:
    """Receives progress events; the CLI draws a progress bar from them. Does nothing here."""

    def file_started(self, item: InputFile, duration: float | None) -> None: ...

    def audio_advanced(self, item: InputFile, seconds: float) -> None: ...

    def file_finished(self, outcome: FileOutcome, duration: float | None) -> None: ...


def discover_inputs(paths: Iterable[Path]) -> tuple[list[InputFile], list[FileOutcome]]:
    """Expand files and folders (recursively) into inputs with unique output stems.

    A folder contributes the files whose extension is in ``AUDIO_EXTENSIONS``, and their output
    stems keep the folder structure below it. A file named explicitly is always taken. Paths
    that do not exist become failed outcomes, so that the rest of the batch still runs.
    """
    found: list[tuple[Path, Path]] = []
    missing: list[FileOutcome] = []
    for root in paths:
        if root.is_dir():
            for file in sorted(p for p in root.rglob("*") if p.is_file()):
                if file.suffix.lower() in AUDIO_EXTENSIONS and not file.name.startswith("."):
                    found.append((file, file.relative_to(root)))
        elif root.is_file():
            found.append((root, Path(root.name)))
        else:
            item = InputFile(root, Path(root.name))
            missing.append(FileOutcome(item, "failed", error=f"{root}: no such file or folder"))
    seen_paths: set[Path] = set()
    unique = []
    for path, relative in found:
        if path.resolve() not in seen_paths:
            seen_paths.add(path.resolve())
            unique.append((path, relative))
    stems = [relative.with_suffix("") for _, relative in unique]
    relatives_of: dict[Path, set[Path]] = {}
    for (_, relative), stem in zip(unique, stems, strict=True):
        relatives_of.setdefault(stem, set()).add(relative)
    clashes = {stem for stem, relatives in relatives_of.items() if len(relatives) > 1}
    # Two recordings that differ only by extension keep the extension in their output name.
    inputs: list[InputFile] = []
    claimed: dict[Path, Path] = {}
    for (path, relative), stem in zip(unique, stems, strict=True):
        item = InputFile(path, relative if stem in clashes else stem)
        if item.stem in claimed:
            # Same relative name under two input folders (mon/visit1.mp3, tue/visit1.mp3).
            missing.append(FileOutcome(item, "failed", error=(
                f"{path}: its outputs would overwrite those of {claimed[item.stem]}; "
                "transcribe the folders into separate --out folders")))
            continue
        claimed[item.stem] = path
        inputs.append(item)
    return inputs, missing


def probe_durations(inputs: Iterable[InputFile]) -> dict[Path, float | None]:
    """Each input's duration (seconds) from its container header; None where it is unknown."""
    return {item.path: probe_duration(item.path) for item in inputs}


def auto_parallelism(on_gpu: bool, files: int) -> tuple[int, int]:
    """Default (workers, batch_size) for a device and a number of files.

    CPU: one sequential transcription per core (up to 4, and no more than there are files),
    the most accurate decoding, which on 2 cores also beats one batched transcription on
    throughput. GPU: one file at a time, its chunks batched by 8: a GPU is best fed large
    batches.
    """
    return (1, 8) if on_gpu else (max(1, min(os.cpu_count() or 1, 4, files)), 1)


@dataclass(frozen=True)
class BatchJob:
    """A batch: where outputs go, in which formats, and how to transcribe."""

    out_dir: Path
    options: TranscribeOptions
    formats: tuple[str, ...] = FORMATS
    overwrite: bool = False
    highlight: bool = True
    """Mark entities in txt/srt/vtt (when there are entities)."""

    def __post_init__(self) -> None:
        unknown = set(self.formats) - set(FORMATS)
        if unknown:
            raise ValueError(f"unknown output format(s) {sorted(unknown)}; choose from {FORMATS}")


@dataclass(frozen=True)
class Fingerprints:
    """What decides each stage's output. A previous run's result is kept where they match."""

    transcript: str
    """Recognition: model weights, precision and transcription settings (not the device)."""
    entities: str | None = None
    """The entity recognizer's, or None when entities are not wanted."""
    translation: str | None = None
    """The translation stage's, or None when translations are not wanted."""
    translation_method: TranslationMethod | None = None
    """``speech`` needs the audio (and the recogniser); ``text`` uses the entities."""
    speakers: str | None = None
    """The speaker stage's (diarizer and role weights, settings, requested count), or None
    when speakers are not wanted."""

    @classmethod
    def of(cls, backend: ASRBackend, options: TranscribeOptions,
           annotator: EntityAnnotator | None = None,
           translator: SegmentTranslator | None = None,
           speakers: SpeakerStage | None = None) -> Fingerprints:
        entities = annotator.fingerprint if annotator is not None else None
        if entities is not None and speakers is not None:  # marked by the dialogue too
            entities = marked_fingerprint(entities, speakers.fingerprint)
        return cls(
            # The device is left out: a transcript made on a GPU is not redone on a CPU.
            settings_fingerprint(backend.reproducibility_key, options.to_dict()),
            entities,
            translator.fingerprint if translator is not None else None,
            translator.method if translator is not None else None,
            speakers.fingerprint if speakers is not None else None)

    def speakers_current(self, doc: TranscriptDocument) -> bool:
        if self.speakers is None:
            return doc.speakers is None
        return doc.speakers is not None and doc.speakers.fingerprint == self.speakers

    def speakers_reusable(self, doc: TranscriptDocument) -> bool:
        """Whether ``doc``'s recognised segments can be kept: they were not split by speaker,
        split by this run's speaker stage, or split by another (or when this run wants no
        speakers) in a transcript that says which recognised segment each piece came from
        (:func:`streaming.speakers.without_speakers` joins them back). A transcript written
        before that was kept is recognised again."""
        return doc.speakers is None or self.speakers_current(doc) \
            or doc.speakers.origins is not None

    def entities_current(self, doc: TranscriptDocument) -> bool:
        if self.entities is None:
            return doc.entities is None
        return doc.entities is not None and doc.entities.fingerprint == self.entities

    def translations_current(self, doc: TranscriptDocument) -> bool:
        if self.translation is None:
            return doc.translations is None
        return doc.translations is not None and doc.translations.fingerprint == self.translation

    def needs_audio(self, done: TranscriptDocument | None) -> bool:
        """Whether a file whose previous transcript is ``done`` must be decoded again."""
        return done is None or not self.speakers_current(done) or (
            self.translation_method == "speech" and not self.translations_current(done))


@dataclass(frozen=True)
class PipelineInfo:
    """What a batch runs with: the models as loaded, and their fingerprints."""

    prints: Fingerprints
    asr: str
    entities: str | None = None
    translation: str | None = None
    """``language: model``"""
    speakers: str | None = None
    """The diarizer and role classifier, and the requested count."""

    @classmethod
    def of(cls, backend: ASRBackend, options: TranscribeOptions,
           annotator: EntityAnnotator | None = None,
           translator: SegmentTranslator | None = None,
           speakers: SpeakerStage | None = None) -> PipelineInfo:
        return cls(Fingerprints.of(backend, options, annotator, translator, speakers),
                   backend.identifier, annotator.model if annotator is not None else None,
                   f"{translator.target}: {translator.model}" if translator is not None
                   else None,
                   f"{speakers.model} ({speakers.count})" if speakers is not None else None)


@dataclass(frozen=True)
class FileWork:
    """One input on its way through the stages; an ``error`` ends its journey."""

    item: InputFile
    source: SourceFile | None = None
    doc: TranscriptDocument | None = None
    audio: np.ndarray | None = None
    """The decoded recording, while a stage still needs it."""
    speech: tuple[Span, ...] | None = None
    """Where the VAD found speech, when it ran apart from recognition (on a Ray worker)."""
    complete: bool = False
    """A previous run's transcript holds everything: only renderings may be missing."""
    entities_changed: bool = False
    error: str | None = None
    warning: str | None = None
    """What decoding found wrong with the recording (:attr:`DecodedAudio.warning`)."""
    interrupted: bool = False
    seconds: float = 0.0
    """Wall time the stages spent on it so far."""

    @property
    def active(self) -> bool:
        return self.error is None and not self.interrupted and not self.complete


class FileStages:
    """The steps from a recording to its written outputs, each of which can run on its own
    (in one thread here, in Ray tasks and actors in :mod:`streaming.batch.ray_job`).

    A stage that fails records the error in the :class:`FileWork` and the later stages pass it
    on untouched: one bad file never stops the others. Only the stages whose model is given
    may run (``backend`` for :meth:`recognise`, ``speakers`` for :meth:`diarize`,
    ``annotator`` and ``translator`` for the enrichment stage that :meth:`annotate` and
    :meth:`translate` run, as the live server does on its finals).
    """

    def __init__(self, job: BatchJob, prints: Fingerprints, *,
                 backend: ASRBackend | None = None, annotator: EntityAnnotator | None = None,
                 translator: SegmentTranslator | None = None,
                 speakers: SpeakerStage | None = None,
                 listener: ProgressListener | None = None,
                 stop: threading.Event | None = None) -> None:
        self.job = job
        self.prints = prints
        self.backend = backend
        self.speakers = speakers
        self.enrichment = SegmentEnrichment(annotator, translator)
        self.listener = listener or ProgressListener()
        self.stop = stop or threading.Event()

    def stem_path(self, item: InputFile) -> Path:
        return self.job.out_dir / item.stem

    def existing(self, item: InputFile, source: SourceFile) -> TranscriptDocument | None:
        """The transcript of this exact input with these recognition settings, if one exists."""
        json_path = self.stem_path(item).with_name(item.stem.name + ".json")
        try:
            doc = TranscriptDocument.from_json(json_path.read_text(encoding="utf-8"))
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None
        if doc.source.sha256 != source.sha256:
            logger.info("%s changed since it was transcribed: transcribing again", item.path)
            return None
        if doc.fingerprint != self.prints.transcript:
            logger.info("%s was transcribed with other settings: transcribing again", item.path)
            return None
        if not self.prints.speakers_reusable(doc):
            logger.info("%s was split by speaker with other settings, before transcripts kept "
                        "the recogniser's segments: transcribing again", item.path)
            return None
        return doc

    def process(self, item: InputFile) -> FileOutcome:
        """Every stage, in this thread."""
        work = self.prepare(item)
        for stage in (self.recognise, self.diarize, self.annotate, self.translate):
            work = stage(work)
        return self.finish(work)

    def prepare(self, item: InputFile, find_speech: bool = False) -> FileWork:
        """Identify the input, look for a previous run's transcript, and decode the audio if a
        stage needs it; ``find_speech`` also runs the VAD (see :meth:`ASRBackend.transcribe`).

        A previous run's transcript is kept when the audio and the recognition settings are
        the same; its speakers (when it has none yet, or has another diarization's: the
        recogniser's segments it kept are split again), entities and translations are then
        added, redone or removed to match this run's settings without recognising the audio
        again (diarization decodes it).
        """
        def step(work: FileWork) -> FileWork:
            source = SourceFile.of(item.path)
            done = None if self.job.overwrite else self.existing(item, source)
            joined = False
            if done is not None and done.speakers is not None \
                    and not self.prints.speakers_current(done):
                # Split by another diarization: from the recogniser's segments again.
                done, joined = without_speakers(done), True
            if done is not None and not joined and self.prints.entities_current(done) \
                    and self.prints.translations_current(done) \
                    and self.prints.speakers_current(done):
                return replace(work, source=source, doc=done, complete=True)
            audio, warning = None, None
            if self.prints.needs_audio(done):
                decoded = decode_checked(item.path)
                audio, warning = decoded.samples, decoded.warning
            speech = None
            if find_speech and done is None and audio is not None:
                speech = tuple(speech_runs(audio, self.job.options))
            return replace(work, source=source, doc=done, audio=audio, speech=speech,
                           warning=warning)

        return self._guarded(FileWork(item), step)

    def recognise(self, work: FileWork) -> FileWork:
        """The transcript, unless a previous run's is kept (then the work passes through)."""
        def step(work: FileWork) -> FileWork:
            assert self.backend is not None and work.source is not None \
                and work.audio is not None, "recognise() needs a backend and decoded audio"
            return replace(work, doc=self._transcribe(work.item, work.source, work.audio,
                                                      work.speech))

        return work if work.doc is not None else self._guarded(work, step)

    def diarize(self, work: FileWork) -> FileWork:
        """The speakers and their roles, when they are wanted and missing: the segments are
        split by speaker (their entities and translations are then made again)."""
        def step(work: FileWork) -> FileWork:
            assert self.speakers is not None and work.doc is not None \
                and work.audio is not None, "diarize() needs the speaker stage and the audio"
            return replace(work, doc=self.speakers.annotate(work.doc, work.audio))

        if work.doc is None or self.prints.speakers_current(work.doc):
            return work
        return self._guarded(work, step)

    def annotate(self, work: FileWork) -> FileWork:
        """The entities, when they are missing or come from another recognizer; in a
        transcript with speakers, marked as asked or negated by the dialogue."""
        def step(work: FileWork) -> FileWork:
            assert work.doc is not None
            doc = mark_dialogue_turns(self.enrichment.annotate_document(work.doc))
            return replace(work, doc=doc, entities_changed=True)

        if work.doc is None or self.prints.entities_current(work.doc):
            return work
        return self._guarded(work, step)

    def translate(self, work: FileWork) -> FileWork:
        """The translations, when they are missing, come from another stage, or were made
        from entities that just changed (a text translation uses them). Frees the audio."""
        def step(work: FileWork) -> FileWork:
            assert work.doc is not None
            return replace(work, doc=self.enrichment.translate_document(work.doc,
                                                                        _AudioOnce(work)))

        if work.doc is not None and (not self.prints.translations_current(work.doc) or (
                work.entities_changed and self.prints.translation_method == "text")):
            work = self._guarded(work, step)
        return replace(work, audio=None, speech=None)

    def finish(self, work: FileWork) -> FileOutcome:
        """Write the outputs (or the renderings a complete previous run lacks)."""
        item = work.item
        if work.interrupted:
            return FileOutcome(item, "interrupted", wall_seconds=work.seconds)
        start = time.perf_counter()
        try:
            if work.error is None:
                assert work.doc is not None
                stem = self.stem_path(item)
                if work.complete:
                    outputs = write_missing(work.doc, stem, self.job.formats, self.job.highlight)
                else:
                    outputs = tuple(write_outputs(work.doc, stem, self.job.formats,
                                                  self.job.highlight))
        except (OSError, ValueError) as exc:
            work = replace(work, error=_message(item, exc))
        wall = work.seconds + time.perf_counter() - start
        if work.error is not None:
            return FileOutcome(item, "failed", error=work.error, wall_seconds=wall)
        assert work.doc is not None
        return FileOutcome(item, "skipped" if work.complete else "done",
                           audio_seconds=work.doc.info.duration, wall_seconds=wall,
                           warning=work.warning,
                           language=work.doc.info.language, text=_printed(work.doc),
                           outputs=outputs)

    def _guarded(self, work: FileWork, step: Callable[[FileWork], FileWork]) -> FileWork:
        """Run ``step`` unless the work is over; its errors are recorded, never raised."""
        if work.error is not None or work.interrupted:
            return work
        start = time.perf_counter()
        try:
            if self.stop.is_set():
                raise _StopRequestedError
            result = step(work)
        except _StopRequestedError:
            result = replace(work, interrupted=True)
        except (MedstreamError, OSError, RuntimeError, ValueError) as exc:
            logger.debug("%s failed", work.item.path, exc_info=True)
            result = replace(work, error=_message(work.item, exc))
        except Exception as exc:  # a bug must not take the rest of the batch down
            logger.exception("unexpected error on %s", work.item.path)
            result = replace(work, error=f"{work.item.path}: internal error: "
                             f"{type(exc).__name__}: {exc}")
        return replace(result, seconds=work.seconds + time.perf_counter() - start)

    def _transcribe(self, item: InputFile, source: SourceFile, audio: np.ndarray,
                    speech: Sequence[Span] | None) -> TranscriptDocument:
        assert self.backend is not None
        segments_iter, info = self.backend.transcribe(audio, self.job.options, speech)
        segments: list[Segment] = []
        reached = 0.0
        for segment in segments_iter:
            if self.stop.is_set():
                raise _StopRequestedError
            segments.append(segment)
            self.listener.audio_advanced(item, segment.end - reached)
            reached = segment.end
        total = len(audio) / SAMPLE_RATE
        self.listener.audio_advanced(item, max(total - reached, 0.0))
        return TranscriptDocument(source=source, info=info, segments=tuple(segments),
                                  fingerprint=self.prints.transcript)


def check_speaker_options(options: TranscribeOptions, speakers: SpeakerStage | None) -> None:
    """Refuse speakers without word timestamps: words are given to speakers one by one."""
    if speakers is not None and not options.word_timestamps:
        raise ValueError("speakers need word timestamps: transcribe with word_timestamps on")


def _message(item: InputFile, exc: BaseException) -> str:
    return str(exc) if str(item.path) in str(exc) else f"{item.path}: {exc}"


class BatchTranscriber:
    """Runs a :class:`BatchJob` over inputs with one backend, in threads of this process."""

    def __init__(self, backend: ASRBackend, job: BatchJob,
                 listener: ProgressListener | None = None, workers: int = 1,
                 annotator: EntityAnnotator | None = None,
                 translator: SegmentTranslator | None = None,
                 speakers: SpeakerStage | None = None) -> None:
        """``annotator``: tag each transcript's segments with medical entities;
        ``translator``: translate each segment (after the entities, which it may use);
        ``speakers``: split each transcript by speaker and name their roles (before the
        entities, which are then marked by the dialogue; needs word timestamps)."""
        if workers < 1:
            raise ValueError("workers must be at least 1")
        check_speaker_options(job.options, speakers)
        self.job = job
        self.workers = workers
        self.info = PipelineInfo.of(backend, job.options, annotator, translator, speakers)
        self.prints = self.info.prints
        self.stages = FileStages(job, self.prints, backend=backend, annotator=annotator,
                                 translator=translator, speakers=speakers, listener=listener)

    @property
    def listener(self) -> ProgressListener:
        return self.stages.listener

    @listener.setter
    def listener(self, listener: ProgressListener) -> None:
        self.stages.listener = listener

    @property
    def fingerprint(self) -> str:
        return self.prints.transcript

    def stop(self) -> None:
        """Ask the batch to stop soon: files in progress end after their current window and
        write nothing; files not started are marked ``interrupted``. A re-run resumes."""
        self.stages.stop.set()

    def process(self, item: InputFile) -> FileOutcome:
        """Transcribe one input, or finish it from a previous run's json; never raises for it."""
        return self.stages.process(item)

    def run(self, inputs: list[InputFile],
            on_outcome: Callable[[FileOutcome], None] | None = None,
            durations: dict[Path, float | None] | None = None) -> BatchSummary:
        """Transcribe every input; a failure is recorded and the batch goes on.

        ``workers`` files are in flight at once, each decoded and then recognised by its own
        thread against the one shared model; outcomes keep the order of ``inputs``. Ctrl-C
        (KeyboardInterrupt) stops the batch as :meth:`stop` does and returns what was done.
        ``durations`` (from :func:`probe_durations`) saves reading the headers again.
        """
        durations = durations if durations is not None else probe_durations(inputs)
        lock = threading.Lock()
        stop = self.stages.stop
        stop.clear()

        def process(item: InputFile) -> FileOutcome:
            if stop.is_set():
                return FileOutcome(item, "interrupted")
            self.listener.file_started(item, durations[item.path])
            outcome = self.process(item)
            with lock:
                self.listener.file_finished(outcome, durations[item.path])
                if on_outcome is not None:
                    on_outcome(outcome)
            return outcome

        with ThreadPoolExecutor(self.workers, thread_name_prefix="transcribe") as pool:
            futures = [pool.submit(process, item) for item in inputs]
            try:
                outcomes = [f.result() for f in futures]
            except KeyboardInterrupt:
                self.stop()
                outcomes = [f.result() for f in futures]
        return BatchSummary(outcomes, interrupted=stop.is_set())


class _AudioOnce:
    """A recording's samples: those already decoded, else decoded on first use."""

    def __init__(self, work: FileWork) -> None:
        self.path = work.item.path
        self._samples = work.audio

    def __call__(self) -> np.ndarray:
        if self._samples is None:
            self._samples = load_audio(self.path)
        return self._samples


def write_missing(doc: TranscriptDocument, stem: Path, formats: tuple[str, ...],
                  highlight: bool = True) -> tuple[Path, ...]:
    """Bring the renderings of a complete json up to date without recognising audio again.

    A format a previous run did not write (e.g. srt added later) is written; one whose content
    is not what the json renders (left over from other settings) is rewritten.
    """
    stale = tuple(f for f in formats if f != "json" and not _holds(
        stem.with_name(f"{stem.name}.{f}"), RENDERERS[f](doc, highlight)))
    if stale:
        write_outputs(doc, stem, stale, highlight)
    return tuple(stem.with_name(f"{stem.name}.{f}") for f in FORMATS
                 if f in formats or f == "json")


def _holds(path: Path, text: str) -> bool:
    try:
        return path.read_text(encoding="utf-8") == text
    except (OSError, UnicodeDecodeError):
        return False


def _printed(doc: TranscriptDocument) -> str:
    """What ``--print`` shows of a transcript: its text, or with speakers one line per turn
    (``Clinician: …``, as in txt, entities not highlighted)."""
    return doc.text if doc.speakers is None else render_txt(doc, highlight=False).rstrip("\n")
