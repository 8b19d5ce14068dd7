"""Batch transcription of files and folders: discovery, resume, per-file errors, concurrency.

One model serves the whole batch. Several files can be in flight at once, each in its own
thread: decoding (PyAV) and inference (CTranslate2) release the GIL, so one file's decoding
overlaps with another's recognition, and on a small CPU two single-threaded transcriptions use
the cores better than one two-threaded transcription.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import numpy as np

from speech.audio import AUDIO_EXTENSIONS, SAMPLE_RATE, load_audio, probe_duration
from speech.backends.base import ASRBackend
from speech.errors import MedstreamError
from speech.options import TranscribeOptions
from speech.types import Segment
from streaming.annotate import EntityAnnotator
from streaming.document import SourceFile, TranscriptDocument, settings_fingerprint
from streaming.translation import AudioSource, SegmentTranslator, translations_current
from streaming.writers import FORMATS, RENDERERS, write_outputs

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


class BatchTranscriber:
    """Runs a :class:`BatchJob` over inputs with one backend."""

    def __init__(self, backend: ASRBackend, job: BatchJob,
                 listener: ProgressListener | None = None, workers: int = 1,
                 annotator: EntityAnnotator | None = None,
                 translator: SegmentTranslator | None = None) -> None:
        """``annotator``: tag each transcript's segments with medical entities;
        ``translator``: translate each segment (after the entities, which it may use)."""
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self.backend = backend
        self.job = job
        self.annotator = annotator
        self.translator = translator
        self.listener = listener or ProgressListener()
        self.workers = workers
        self._stop = threading.Event()
        # The device is left out: a transcript made on a GPU is not redone on a CPU.
        self.fingerprint = settings_fingerprint(backend.reproducibility_key,
                                                job.options.to_dict())

    def stem_path(self, item: InputFile) -> Path:
        return self.job.out_dir / item.stem

    def existing(self, item: InputFile, source: SourceFile) -> TranscriptDocument | None:
        """The finished transcript of this exact input with these settings, if one exists."""
        json_path = self.stem_path(item).with_name(item.stem.name + ".json")
        try:
            doc = TranscriptDocument.from_json(json_path.read_text(encoding="utf-8"))
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None
        if doc.source.sha256 != source.sha256:
            logger.info("%s changed since it was transcribed: transcribing again", item.path)
            return None
        if doc.fingerprint != self.fingerprint:
            logger.info("%s was transcribed with other settings: transcribing again", item.path)
            return None
        return doc

    def stop(self) -> None:
        """Ask the batch to stop soon: files in progress end after their current window and
        write nothing; files not started are marked ``interrupted``. A re-run resumes."""
        self._stop.set()

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
        self._stop.clear()

        def process(item: InputFile) -> FileOutcome:
            if self._stop.is_set():
                return FileOutcome(item, "interrupted")
            self.listener.file_started(item, durations[item.path])
            try:
                outcome = self.process(item)
            except Exception as exc:  # a bug must not take the rest of the batch down
                logger.exception("unexpected error on %s", item.path)
                outcome = FileOutcome(item, "failed", error=f"{item.path}: internal error: "
                                      f"{type(exc).__name__}: {exc}")
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
        return BatchSummary(outcomes, interrupted=self._stop.is_set())

    def process(self, item: InputFile) -> FileOutcome:
        """Transcribe one input, or finish it from a previous run's json; never raises for it.

        A previous run's transcript is kept when the audio and the recognition settings are
        the same; its entities and translations are then added, redone or removed to match this
        run's settings without recognising the audio again (status ``done`` when they changed).
        """
        start = time.perf_counter()
        try:
            source = SourceFile.of(item.path)
            done = None if self.job.overwrite else self.existing(item, source)
            if done is not None and self._entities_current(done) and translations_current(
                    self.translator, done.translations):
                outputs = write_missing(done, self.stem_path(item), self.job.formats,
                                        self.job.highlight)
                return FileOutcome(item, "skipped", audio_seconds=done.info.duration,
                                   language=done.info.language, text=done.text,
                                   outputs=outputs)
            audio = _AudioOnce(item.path)
            doc = done if done is not None else self._transcribe(item, source, audio())
            entities_changed = not self._entities_current(doc)
            if entities_changed:
                doc = self._annotate(replace(doc, entities=None))
            if entities_changed or not translations_current(self.translator, doc.translations):
                doc = self._translate(replace(doc, translations=None), audio)
            outputs = tuple(write_outputs(doc, self.stem_path(item), self.job.formats,
                                          self.job.highlight))
        except _StopRequestedError:
            return FileOutcome(item, "interrupted", wall_seconds=time.perf_counter() - start)
        except (MedstreamError, OSError, RuntimeError, ValueError) as exc:
            logger.debug("transcription of %s failed", item.path, exc_info=True)
            message = str(exc) if str(item.path) in str(exc) else f"{item.path}: {exc}"
            return FileOutcome(item, "failed", error=message,
                               wall_seconds=time.perf_counter() - start)
        return FileOutcome(item, "done", audio_seconds=doc.info.duration,
                           wall_seconds=time.perf_counter() - start,
                           language=doc.info.language, text=doc.text, outputs=outputs)

    def _entities_current(self, doc: TranscriptDocument) -> bool:
        if self.annotator is None:
            return doc.entities is None
        return self.annotator.is_current(doc.entities)

    def _annotate(self, doc: TranscriptDocument) -> TranscriptDocument:
        if self.annotator is None:
            return doc
        if self._stop.is_set():
            raise _StopRequestedError
        return replace(doc, entities=self.annotator.annotate(doc.segments, doc.info.language))

    def _translate(self, doc: TranscriptDocument, audio: AudioSource) -> TranscriptDocument:
        if self.translator is None:
            return doc
        if self._stop.is_set():
            raise _StopRequestedError
        return replace(doc, translations=self.translator.translate(doc, audio))

    def _transcribe(self, item: InputFile, source: SourceFile,
                    audio: np.ndarray) -> TranscriptDocument:
        segments_iter, info = self.backend.transcribe(audio, self.job.options)
        segments: list[Segment] = []
        reached = 0.0
        for segment in segments_iter:
            if self._stop.is_set():
                raise _StopRequestedError
            segments.append(segment)
            self.listener.audio_advanced(item, segment.end - reached)
            reached = segment.end
        total = len(audio) / SAMPLE_RATE
        self.listener.audio_advanced(item, max(total - reached, 0.0))
        return TranscriptDocument(source=source, info=info, segments=tuple(segments),
                                  fingerprint=self.fingerprint)


class _AudioOnce:
    """A recording's samples, decoded on first use and kept for the stages after it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._samples: np.ndarray | None = None

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
