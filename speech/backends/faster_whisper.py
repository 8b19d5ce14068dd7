"""Whisper via faster-whisper / CTranslate2: CPU int8, CUDA float16, batched or sequential."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import ctranslate2
import numpy as np
from faster_whisper import BatchedInferencePipeline, WhisperModel
from faster_whisper.transcribe import Segment as FwSegment
from faster_whisper.transcribe import TranscriptionInfo as FwInfo
from faster_whisper.transcribe import restore_speech_timestamps
from faster_whisper.vad import VadOptions, collect_chunks, get_speech_timestamps

from speech.audio import SAMPLE_RATE
from speech.catalog import ResolvedModel
from speech.chunking import Span, merge_runs, uncovered_tails
from speech.errors import InvalidOptionError
from speech.identify import language_stretches, pick_language
from speech.options import ModelOptions, TranscribeOptions
from speech.types import Segment, TranscriptionInfo, Word
from speech.vocabulary import hotwords

logger = logging.getLogger(__name__)

WINDOW_SECONDS = 30.0
"""Whisper's input window."""
GROUP_BATCHES = 4
"""Batches decoded before segments are handed on (bounds latency and memory per step)."""


SHORT_WINDOW_MARGIN = 200
"""Frames (2 s) of padding kept after a short window's audio when the padding is cut off."""
TOKENS_PER_SECOND = 8
"""Generous bound on Whisper tokens per second of speech, to stop repetition loops early."""


class _WhisperModel(WhisperModel):  # type: ignore[misc]
    """faster-whisper's model, whose encoder can skip the zero padding of short windows.

    Whisper pads every window to 30 s, and the encoder's cost grows faster than linearly with
    its input: tiny.en spends 0.42 s on a padded window and 0.06 s on the 8 s of audio in it
    on 2 CPU cores. Live decoding sees windows of a few seconds, so it encodes only the audio
    plus :data:`SHORT_WINDOW_MARGIN` (rounded to whole seconds, and at least the caller's
    minimum: with too little context Whisper tends to repeat itself). The switch is per
    thread, so
    batch transcription sharing the model keeps Whisper's full windows.
    """

    _short = threading.local()

    def encode(self, features: np.ndarray) -> Any:
        if getattr(self._short, "active", False):
            features = trim_padding(features, self._short.minimum)
        return super().encode(features)


@contextmanager
def short_windows(model: WhisperModel, minimum: int | None) -> Iterator[None]:
    """Within this block, the calling thread's encodes skip the padding of short windows, down
    to ``minimum`` frames (None: keep Whisper's full window)."""
    state = _WhisperModel._short
    before = (getattr(state, "active", False), getattr(state, "minimum", 3000))
    state.active = minimum is not None and isinstance(model, _WhisperModel)
    state.minimum = minimum or 3000
    try:
        yield
    finally:
        state.active, state.minimum = before


def trim_padding(features: np.ndarray, minimum: int) -> np.ndarray:
    """Cut the all-zero frames ``pad_or_trim`` appended, keeping a margin, in whole seconds,
    and at least ``minimum`` frames."""
    frames = features.shape[-1]
    columns = np.abs(features).reshape(-1, frames).max(axis=0) if features.size else []
    filled = np.flatnonzero(np.asarray(columns) > 0)
    content = int(filled[-1]) + 1 if len(filled) else 0
    keep = min(frames, max(minimum, -(-(content + SHORT_WINDOW_MARGIN) // 100) * 100))
    return features[..., :keep] if keep < frames else features


def resolve_device(device: str) -> str:
    """Map ``auto`` to ``cuda`` when CTranslate2 sees a GPU, else ``cpu``."""
    if device == "auto":
        return "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
    if device not in ("cpu", "cuda"):
        raise InvalidOptionError(f"device must be auto, cpu or cuda, not {device!r}")
    if device == "cuda" and ctranslate2.get_cuda_device_count() == 0:
        raise InvalidOptionError("device 'cuda' was requested but CTranslate2 sees no CUDA GPU; "
                                 "use --device cpu")
    return device


def resolve_compute_type(compute_type: str, device: str) -> str:
    """Map ``auto`` to int8 on CPU and float16 on CUDA; refuse types the device cannot run."""
    if compute_type == "auto":
        return "float16" if device == "cuda" else "int8"
    supported = ctranslate2.get_supported_compute_types(device)
    if compute_type != "default" and compute_type not in supported:
        raise InvalidOptionError(
            f"compute type {compute_type!r} is not supported on {device}; "
            f"choose one of: {', '.join(sorted(supported))}")
    return compute_type


class FasterWhisperBackend:
    """A Whisper model loaded once and shared by every transcription in the process."""

    def __init__(self, model: ResolvedModel, options: ModelOptions | None = None) -> None:
        options = options or ModelOptions()
        self.device = resolve_device(options.device)
        self.compute_type = resolve_compute_type(options.compute_type, self.device)
        self._resolved = model
        location = str(model.path) if model.path is not None else model.name
        self.model = _WhisperModel(
            location,
            device=self.device,
            device_index=options.device_index,
            compute_type=self.compute_type,
            cpu_threads=options.cpu_threads or _threads_per_worker(self.device, options.workers),
            num_workers=options.workers,
            # faster-whisper pops entries out of this dict: give it a copy.
            files=dict(model.files) if model.files is not None else None,
            local_files_only=True,
        )

    @property
    def identifier(self) -> str:
        return f"{self._resolved.identifier} [{self.device}, {self.compute_type}]"

    @property
    def reproducibility_key(self) -> str:
        return f"{self._resolved.identifier} [{self.compute_type}]"

    @property
    def multilingual(self) -> bool:
        return bool(self.model.model.is_multilingual)

    @property
    def supported_languages(self) -> list[str]:
        return list(self.model.supported_languages)

    def check(self, options: TranscribeOptions) -> None:
        """Refuse options this model cannot honour, before any audio is decoded."""
        if options.language is not None and options.language not in self.supported_languages:
            if not self.multilingual:
                raise InvalidOptionError(
                    f"model {self._resolved.name} is English-only; language "
                    f"{options.language!r} needs a multilingual model such as --model base")
            raise InvalidOptionError(f"unknown language code {options.language!r}; use an ISO "
                                     "639-1 code Whisper knows (en, de, fr, es, vi, zh …) or auto")
        for language in options.languages:
            self.check(replace(options, language=language, languages=()))
        if options.task == "translate" and not self.multilingual:
            raise InvalidOptionError(f"model {self._resolved.name} is English-only and cannot "
                                     "translate; use a multilingual model such as --model base")

    def _decode_kwargs(self, options: TranscribeOptions) -> dict[str, Any]:
        """The faster-whisper keyword arguments every decode takes from ``options``, once
        :meth:`check` has accepted them."""
        self.check(options)
        return {
            "language": options.language,
            "task": options.task,
            "beam_size": options.beam_size,
            "word_timestamps": options.word_timestamps,
            "initial_prompt": options.initial_prompt,
            "hotwords": hotwords(options.vocabulary) if options.vocabulary else None,
        }

    def transcribe(
        self, audio: np.ndarray, options: TranscribeOptions,
        speech: Sequence[Span] | None = None,
    ) -> tuple[Iterator[Segment], TranscriptionInfo]:
        """Recognise ``audio``; ``speech`` is where the VAD found speech when the caller ran it
        already (:func:`speech_runs`, e.g. on another machine), else it runs here.

        Sequential decoding with VAD does what faster-whisper does inside its own
        ``vad_filter``: the speech runs are concatenated, decoded, and the times mapped back.
        """
        kwargs = {**self._decode_kwargs(options), "vad_filter": False}
        runs = list(speech) if speech is not None else speech_runs(audio, options)
        if options.languages:
            return self._transcribe_by_language(audio, runs, options)
        if options.batch_size > 1:
            return self._transcribe_batched(audio, runs, options, kwargs)
        if not options.vad_filter:
            segments, info = self.model.transcribe(
                audio, condition_on_previous_text=options.condition_on_previous_text, **kwargs)
            return _convert(segments, info.language), self._info(info, options)
        chunks = [{"start": round(r.start * SAMPLE_RATE), "end": round(r.end * SAMPLE_RATE)}
                  for r in runs]
        speech_audio = np.concatenate(collect_chunks(audio, chunks)[0])
        segments, info = self.model.transcribe(
            speech_audio, condition_on_previous_text=options.condition_on_previous_text,
            **kwargs)
        if chunks:
            segments = restore_speech_timestamps(segments, chunks, SAMPLE_RATE)
        result = replace(self._info(info, options), duration=len(audio) / SAMPLE_RATE,
                         duration_after_vad=len(speech_audio) / SAMPLE_RATE)
        return _convert(segments, info.language), result

    def _transcribe_by_language(self, audio: np.ndarray, runs: list[Span],
                                options: TranscribeOptions
                                ) -> tuple[Iterator[Segment], TranscriptionInfo]:
        """A bilingual recording (``options.languages``): each speech run identified among
        the languages, and each stretch of consecutive runs in one language decoded in it.
        The recording's language is the one most of its speech is in, and its probability
        the share of the speech in it."""
        def identify(run: Span) -> str:
            clip = audio[round(run.start * SAMPLE_RATE): round(run.end * SAMPLE_RATE)]
            return pick_language(self.detect_language(clip, vad_filter=False), options.languages)

        segments: list[Segment] = []
        spoken: dict[str, float] = {}
        for language, stretch in language_stretches(runs, identify):
            found, _ = self.transcribe(audio, replace(options, language=language, languages=()),
                                       speech=stretch)
            segments += [replace(s, id=len(segments) + i) for i, s in enumerate(found)]
            spoken[language] = spoken.get(language, 0.0) + sum(r.duration for r in stretch)
        main = max(spoken, key=lambda language: spoken[language], default=options.languages[0])
        total = sum(spoken.values())
        return iter(segments), TranscriptionInfo(
            language=main, language_probability=spoken.get(main, 0.0) / (total or 1.0),
            duration=len(audio) / SAMPLE_RATE, duration_after_vad=total, task=options.task,
            model=self.identifier, settings=options.to_dict())

    def _transcribe_batched(self, audio: np.ndarray, runs: list[Span],
                            options: TranscribeOptions,
                            kwargs: dict[str, Any]) -> tuple[Iterator[Segment], TranscriptionInfo]:
        """Decode VAD chunks in batches, then decode again the chunk tails Whisper skipped.

        Chunks go in groups of a few batches, so segments arrive while a long recording is
        still being decoded; the first group also settles the language for the rest.
        """
        chunks = merge_runs(runs, min(options.chunk_seconds, WINDOW_SECONDS))
        if not chunks:
            return iter(()), self._silent_info(audio, options)
        size = options.batch_size * GROUP_BATCHES
        groups = [chunks[i:i + size] for i in range(0, len(chunks), size)]
        # The pipeline keeps per-recording state (last speech timestamp): one per call, so that
        # concurrent transcriptions sharing the model do not disturb each other.
        pipeline = BatchedInferencePipeline(self.model)
        first, info = _decode_group(pipeline, audio, groups[0], runs, options, kwargs)
        settled = {**kwargs, "language": info.language}

        def segments() -> Iterator[FwSegment]:
            yield from first
            for group in groups[1:]:
                yield from _decode_group(pipeline, audio, group, runs, options, settled)[0]

        result = replace(self._info(info, options),
                         duration_after_vad=sum(r.duration for r in runs))
        return _convert(segments(), info.language), result

    def _info(self, info: FwInfo, options: TranscribeOptions) -> TranscriptionInfo:
        return TranscriptionInfo(
            language=info.language,
            language_probability=float(info.language_probability),
            duration=float(info.duration),
            duration_after_vad=float(info.duration_after_vad),
            task=options.task,
            model=self.identifier,
            settings=options.to_dict(),
        )

    def _silent_info(self, audio: np.ndarray, options: TranscribeOptions) -> TranscriptionInfo:
        return TranscriptionInfo(
            language=options.language or "en", language_probability=0.0,
            duration=len(audio) / SAMPLE_RATE, duration_after_vad=0.0, task=options.task,
            model=self.identifier, settings=options.to_dict())

    def detect_language(self, audio: np.ndarray, *,
                        vad_filter: bool = True) -> list[tuple[str, float]]:
        if not self.multilingual:
            return [("en", 1.0)]
        _, _, probs = self.model.detect_language(audio[: 30 * SAMPLE_RATE],
                                                 vad_filter=vad_filter)
        return sorted(((lang, float(p)) for lang, p in probs), key=lambda lp: -lp[1])

    def transcribe_windows(self, windows: Sequence[np.ndarray], options: TranscribeOptions,
                           *, fallback: bool = True, context: int | None = None
                           ) -> list[list[Segment]]:
        """Recognise short windows of speech (already cut by a VAD), all with ``options``.

        One window is decoded sequentially, which never skips the end of a window; several are
        decoded in one batched model call (concatenated, one clip each, tails decoded again as
        in batched transcription), which is what makes one GPU serve many live streams.
        Times in the result are relative to the start of each window. ``fallback`` False
        decodes once at temperature 0 (live partials), True with Whisper's temperature
        fallback against repetition loops. ``context`` (frames of 10 ms) makes the encoder see
        only the audio of each window and its padding up to that length (see
        :class:`_WhisperModel`); None keeps Whisper's 30 s window. Less context is faster (on 2
        cores, tiny.en encodes 10 s in a quarter of the time of 30 s) but makes Whisper repeat
        or invent words more often: on the 50 s OSCE sample, tiny.en finals reach 13 % WER with
        the full window, 15.5 % with 20 s and 44 % with 10 s.
        """
        kwargs = self._decode_kwargs(options)
        longest = max(len(w) for w in windows) / SAMPLE_RATE
        kwargs["max_new_tokens"] = int(TOKENS_PER_SECOND * longest) + 16
        if len(windows) == 1:
            with short_windows(self.model, context):
                found, info = self.model.transcribe(
                    windows[0], vad_filter=False, condition_on_previous_text=False,
                    temperature=[0.0, 0.2, 0.4, 0.6, 0.8, 1.0] if fallback else 0.0, **kwargs)
                return [list(_convert(found, options.language or info.language))]
        offsets = np.cumsum([0, *(len(w) for w in windows)]) / SAMPLE_RATE
        audio = np.concatenate(list(windows)).astype(np.float32, copy=False)
        clips = [Span(float(offsets[i]), float(offsets[i + 1])) for i in range(len(windows))]
        batched = replace(options, batch_size=len(windows))
        with short_windows(self.model, context):
            found_segments, info = _decode_group(BatchedInferencePipeline(self.model), audio,
                                                 clips, clips, batched, kwargs)
        result: list[list[Segment]] = [[] for _ in windows]
        for seg in _convert(found_segments, options.language or info.language):
            index = int(np.searchsorted(offsets, (seg.start + seg.end) / 2, side="right")) - 1
            index = min(max(index, 0), len(windows) - 1)
            result[index].append(_shifted(seg, -float(offsets[index]), len(result[index])))
        return result


def _decode_group(pipeline: BatchedInferencePipeline, audio: np.ndarray, chunks: list[Span],
                  runs: list[Span], options: TranscribeOptions,
                  kwargs: dict[str, Any]) -> tuple[list[FwSegment], FwInfo]:
    """Decode one group of chunks, then the tails of those chunks that Whisper skipped."""
    # Timestamp tokens make the pipeline cut sentence-sized segments instead of one segment
    # per chunk, at no measurable cost.
    common = {**kwargs, "batch_size": options.batch_size, "without_timestamps": False}
    found, info = pipeline.transcribe(
        audio, clip_timestamps=[c.as_clip() for c in chunks], **common)
    segments = list(found)
    tails = uncovered_tails(chunks, [Span(s.start, s.end) for s in segments], runs)
    if tails:
        logger.debug("decoding %d chunk tails again", len(tails))
        more, _ = pipeline.transcribe(
            audio, clip_timestamps=[t.as_clip() for t in tails],
            **{**common, "language": info.language})
        segments = sorted([*segments, *more], key=lambda s: s.start)
    return segments, info


def _shifted(segment: Segment, delta: float, index: int) -> Segment:
    words = tuple(replace(w, start=max(0.0, w.start + delta), end=max(0.0, w.end + delta))
                  for w in segment.words)
    return replace(segment, id=index, start=max(0.0, segment.start + delta),
                   end=max(0.0, segment.end + delta), words=words)


def _threads_per_worker(device: str, workers: int) -> int:
    # On a small CPU, several single-threaded transcriptions at once use the cores better than
    # one transcription spread over all of them (benchmarks/batch_throughput.py).
    if device != "cpu" or workers == 1:
        return 0
    return max(1, (os.cpu_count() or 1) // workers)


def _vad_options(options: TranscribeOptions) -> VadOptions:
    # Chunks longer than Whisper's 30 s window crash CTranslate2 in the batched pipeline
    # (faster-whisper 1.2.1), so speech runs are capped for both modes.
    return VadOptions(min_silence_duration_ms=options.vad_min_silence_ms,
                      max_speech_duration_s=min(options.chunk_seconds, WINDOW_SECONDS))


def speech_runs(audio: np.ndarray, options: TranscribeOptions) -> list[Span]:
    """Where the speech is (seconds): Silero VAD runs, or the whole recording without VAD."""
    if not options.vad_filter:
        return [Span(0.0, len(audio) / SAMPLE_RATE)]
    return [Span(r["start"] / SAMPLE_RATE, r["end"] / SAMPLE_RATE)
            for r in get_speech_timestamps(audio, _vad_options(options))]


def _convert(segments: Iterable[FwSegment], language: str) -> Iterator[Segment]:
    index = 0
    for seg in segments:
        text = seg.text.strip()
        if not text:
            continue
        words = tuple(
            Word(start=float(w.start), end=max(float(w.end), float(w.start)),
                 text=w.word, probability=float(w.probability))
            for w in (seg.words or ())
        )
        yield Segment(
            id=index,
            start=float(seg.start),
            end=max(float(seg.end), float(seg.start)),
            text=text,
            words=words,
            language=language,
            avg_logprob=float(seg.avg_logprob),
            no_speech_prob=float(seg.no_speech_prob),
        )
        index += 1
