"""NeMo cache-aware streaming models: true streaming, behind the live recogniser protocol.

A cache-aware FastConformer/Conformer (``att_context_style: chunked_limited``, causal
convolutions) is trained to see a bounded left context and a fixed look-ahead, so it can encode
audio chunk by chunk, carrying its attention and convolution caches from one chunk to the next
(``conformer_stream_step``), with the same result as encoding the whole utterance at once. No
window is ever decoded twice: the cost per second of audio is constant, and a hypothesis only
grows (RNNT and CTC greedy decoding are append-only), so every partial is stable.

As with Whisper, the stream is cut into utterances by the VAD (:class:`~speech.utterances.
UtteranceGate`): silence never reaches the model, each utterance starts with fresh caches and
ends with a final. A speaker who goes on after a sentence does not hold it back: where the VAD
heard a pause of ``pause_end`` seconds or more inside the turn, and the text the model had
decoded when it had passed the pause's middle but read no audio after the pause ends a
sentence (``.``, ``?``, ``!``: models that write punctuation) with ``min_sentence`` seconds of
audio, the utterance is closed there with that text as its final, and the speech goes on as
the next one (as :mod:`speech.online` makes sentence finals for Whisper). An utterance longer
than ``max_utterance`` seconds is closed where it is and the speech continues as the next one.

Each job is one chunk of one stream (:class:`ChunkJob`). :meth:`NemoStreaming.decode` encodes
the chunks of all streams that are at the same stage in one batched ``conformer_stream_step``
call: the caches of the streams are stacked along the batch axis, which is how a GPU serves
many sessions with one model. Features are computed with the model's own preprocessor (dither
off) on the utterance so far, so the frames the encoder sees are exactly those of offline
feature extraction; only frames whose STFT window is complete are used until the utterance ends.

``NemoStreaming`` is also an :class:`~speech.backends.base.ASRBackend`: ``transcribe`` runs the
same streaming decode over a whole recording (upload endpoint, batch CLI). Load a model with
:func:`load_nemo` (a ``.nemo`` file); it needs ``nemo_toolkit[asr]`` (the ``nemo`` extra).
"""

from __future__ import annotations

import copy
import hashlib
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from speech.audio import SAMPLE_RATE
from speech.chunking import Span
from speech.errors import InvalidOptionError, ModelNotFoundError
from speech.online import StreamOptions, StreamUpdate
from speech.options import TranscribeOptions
from speech.types import Segment, TranscriptionInfo, ends_sentence
from speech.utterances import PREROLL_SAMPLES, Utterance, UtteranceGate

HEARD_KEPT = 64
"""How many of an utterance's last chunks keep a record of the text decoded after them
(``_NemoUtterance.heard``): several seconds' worth, more than a pause the VAD reports late."""
NEMO_HINT = "NeMo models need nemo_toolkit[asr]: pip install 'medstream[nemo]'"


def _nemo_asr() -> Any:
    try:
        import nemo.collections.asr as nemo_asr
    except ImportError as error:  # pragma: no cover - depends on the installation
        raise InvalidOptionError(NEMO_HINT) from error
    return nemo_asr


@dataclass
class _NemoUtterance(Utterance):
    frames_done: int = 0
    """Feature frames already given to the encoder."""
    frames_used: int = 0
    """Frames any chunk so far has read (chunks overlap: the look-ahead is read again)."""
    step: int = 0
    cache: tuple[Any, Any, Any] | None = None
    """cache_last_channel, cache_last_time, cache_last_channel_len (batch of one)."""
    previous: Any = None
    """Previous hypothesis (RNNT) or greedy predictions (CTC)."""
    text: str = ""
    shown: str = ""
    """Text of the last partial sent."""
    cut: bool = False
    """Closed because it reached max_utterance."""
    heard: list[tuple[int, int, str]] = field(default_factory=list)
    """After each of its last chunks: the stream sample up to which the model had decoded,
    the one up to which it had read (look-ahead), and the text it had then."""
    decided: bool = False
    """Closed at a sentence end (``pause_end``): ``text`` is its final as it stands."""


@dataclass
class ChunkJob:
    """One chunk of one utterance for the encoder (features None: nothing left, finalise)."""

    stream: NemoStream
    utterance: _NemoUtterance
    features: Any
    """Tensor [features, frames] with the pre-encode cache in front, or None."""
    length: int
    first: bool
    last: bool
    """The utterance has ended and this chunk reaches its end (keep all outputs)."""
    shift: int
    frames_end: int = 0
    """Frame after the last one the chunk reads."""


@dataclass
class ChunkResult:
    text: str
    cache: tuple[Any, Any, Any]
    previous: Any


@dataclass(frozen=True)
class _Geometry:
    """The encoder's streaming configuration, for the first chunk and for the others."""

    chunk: tuple[int, int]
    shift: tuple[int, int]
    pre_encode: tuple[int, int]
    drop_extra: int
    sampling_frames: tuple[int, int] | None

    @classmethod
    def of(cls, encoder: Any) -> _Geometry:
        cfg = encoder.streaming_cfg

        def pair(value: Any) -> tuple[int, int]:
            if isinstance(value, (list, tuple)):
                return int(value[0]), int(value[1])
            return int(value), int(value)

        frames = None
        pre = getattr(encoder, "pre_encode", None)
        if pre is not None and hasattr(pre, "get_sampling_frames"):
            frames = pair(pre.get_sampling_frames())
        return cls(pair(cfg.chunk_size), pair(cfg.shift_size), pair(cfg.pre_encode_cache_size),
                   int(cfg.drop_extra_pre_encoded), frames)


LIVE_FRAME_SECONDS = 0.1
"""The audio per frame a live client sends (``streaming.live.client``); whole recordings are fed the
same way."""


class NemoStream(UtteranceGate):
    """One live stream of a NeMo cache-aware model."""

    def __init__(self, backend: NemoStreaming, options: StreamOptions) -> None:
        self.options = options
        super().__init__(options.vad_settings(), options.pause_end)
        self.backend = backend
        self._open: _NemoUtterance | None
        self._closed: Any

    def _new_utterance(self, number: int, onset: int) -> _NemoUtterance:
        return _NemoUtterance(number, onset)

    def accept(self, samples: np.ndarray) -> None:
        super().accept(samples)
        utterance = self._open
        if utterance is not None and utterance.samples >= self.options.max_utterance * \
                SAMPLE_RATE:
            utterance.cut = True
            self._close(utterance.start + utterance.samples)
            self._open_utterance(self.received)

    def _paused(self, start: int, end: int) -> bool:
        if not super()._paused(start, end):
            return False
        if not self._busy:
            self._end_sentence()
        return True

    def _end_sentence(self) -> None:
        """Close the open utterance at a pause after a sentence, if there is one (see the
        module's docstring). The VAD reports a pause when speech resumes, by which time the
        model may have read past it: the text is the one it had decoded when it had read up
        to the pause and no further, and the audio after that is decoded again, with fresh
        caches, as the next utterance."""
        utterance = self._open
        if utterance is None or not utterance.pauses:
            return
        begin = utterance.start + round(self.options.min_sentence * SAMPLE_RATE)
        for start, end in reversed(utterance.pauses):
            found = [(read, text) for decoded, read, text in utterance.heard
                     if decoded >= (start + end) // 2 and begin <= read <= end]
            if found and ends_sentence(found[-1][1]) \
                    and self.received - found[-1][0] < PREROLL_SAMPLES:
                read, text = found[-1]
                utterance.text, utterance.decided = text, True
                self._close(read)
                self._open_utterance(read)
                return

    def _close(self, end: int) -> None:
        # The VAD places the end of speech in the past; audio the encoder has already heard
        # stays in the utterance, so that its final is the model's view of exactly that audio.
        utterance = self._open
        if utterance is not None and utterance.frames_used and not utterance.decided:
            heard = (utterance.frames_used - 1) * self.backend.hop + self.backend.n_fft // 2
            end = max(end, utterance.start + heard)
        super()._close(end)

    @property
    def pending_final(self) -> bool:
        return bool(self._closed)

    @property
    def awaiting_words(self) -> bool:
        return self._open is not None and not self._open.shown and not self._busy

    def next_job(self) -> ChunkJob | None:
        if self._busy:
            return None
        utterance = self._closed[0] if self._closed else self._open
        if utterance is None:
            return None
        if utterance.decided:  # its text is final: nothing to decode
            self._busy = True
            return ChunkJob(self, utterance, None, 0, False, True, 0)
        job = self.backend.chunk(self, utterance)
        if job is not None:
            self._busy = True
            utterance.frames_used = max(utterance.frames_used, job.frames_end)
        return job

    def complete(self, job: ChunkJob, result: ChunkResult | None) -> list[StreamUpdate]:
        if job.stream is not self:
            raise ValueError("this job belongs to another stream")
        self._busy = False
        utterance = job.utterance
        if result is not None:
            utterance.cache, utterance.previous = result.cache, result.previous
            utterance.text = result.text
            utterance.frames_done += job.shift
            utterance.step += 1
            done_samples = utterance.start + utterance.frames_done * self.backend.hop
            self._decoded_until = max(self._decoded_until, min(done_samples, self.received))
        if job.features is None or job.last:
            return self._finalise(utterance)
        hop = self.backend.hop
        utterance.heard.append((utterance.start + utterance.frames_done * hop,
                                utterance.start + (utterance.frames_used - 1) * hop
                                + self.backend.n_fft // 2, utterance.text))
        del utterance.heard[:-HEARD_KEPT]
        if utterance.pauses and utterance is self._open:
            self._end_sentence()
            if utterance.decided:
                return []  # its final is the next job
        text = utterance.text.strip()
        if not text or text == utterance.shown:
            return []
        utterance.shown = text
        start = utterance.start / SAMPLE_RATE
        segment = Segment(id=utterance.number, start=start,
                          end=start + utterance.frames_done * self.backend.hop / SAMPLE_RATE,
                          text=text, language=self.backend.language, is_final=False)
        return [StreamUpdate(utterance.number, segment, stable=text)]

    def _finalise(self, utterance: _NemoUtterance) -> list[StreamUpdate]:
        assert self._closed and self._closed[0] is utterance
        self._closed.popleft()
        if self._open is None and not self._closed:
            self._decoded_until = self.received
        text = utterance.text.strip()
        if not text:
            return []
        assert utterance.end is not None
        segment = Segment(id=self.finals, start=utterance.start / SAMPLE_RATE,
                          end=utterance.end / SAMPLE_RATE, text=text,
                          language=self.backend.language, is_final=True)
        self.finals += 1
        return [StreamUpdate(utterance.number, segment)]


class NemoStreaming:
    """A NeMo cache-aware streaming ASR model serving live streams and whole recordings."""

    def __init__(self, model: Any, *, name: str = "nemo", language: str = "en",
                 att_context_size: Sequence[int] | None = None, fingerprint: str = "") -> None:
        import torch

        nemo_asr = _nemo_asr()
        from nemo.collections.asr.parts.mixins.streaming import StreamingEncoder

        if not isinstance(model.encoder, StreamingEncoder):
            raise InvalidOptionError(f"{name}: its encoder cannot stream (not a NeMo "
                                     "StreamingEncoder); use a cache-aware Conformer model")
        cfg = copy.deepcopy(model.cfg.preprocessor)
        normalize = str(cfg.get("normalize", "NA"))
        if normalize not in ("NA", "None", "none"):
            raise InvalidOptionError(
                f"{name}: its features are normalised per utterance ({normalize}), which a "
                "stream cannot do; cache-aware streaming models are trained with normalize: NA")
        self.model = model.eval()
        if att_context_size is not None:
            model.encoder.set_default_att_context_size(list(att_context_size))
        model.encoder.setup_streaming_params()
        self.geometry = _Geometry.of(model.encoder)
        from omegaconf import OmegaConf

        OmegaConf.set_struct(cfg, False)
        cfg.dither = 0.0
        cfg.pad_to = 0
        self.preprocessor = model.from_config_dict(cfg).to(model.device).eval()
        self.hop = round(float(cfg.get("window_stride", 0.01)) * SAMPLE_RATE)
        self.n_fft = int(cfg.get("n_fft") or 512)
        self.ctc = isinstance(model, nemo_asr.models.EncDecCTCModel) or (
            getattr(model, "cur_decoder", None) == "ctc")
        self.name = name
        self.language = language
        self._fingerprint = fingerprint
        self._lock = threading.Lock()
        self._torch = torch

    # -- identity -------------------------------------------------------------------------------
    @property
    def identifier(self) -> str:
        context = self.model.encoder.att_context_size
        suffix = f", sha256:{self._fingerprint[:12]}" if self._fingerprint else ""
        return f"{self.name} (NeMo cache-aware, context {list(context)}{suffix}) " \
               f"[{self.model.device.type}]"

    @property
    def reproducibility_key(self) -> str:
        return f"nemo:{self._fingerprint or self.name}:{list(self.model.encoder.att_context_size)}"

    @property
    def multilingual(self) -> bool:
        return False

    @property
    def chunk_seconds(self) -> float:
        """Audio per chunk after the first (the model's latency step)."""
        return self.geometry.shift[1] * self.hop / SAMPLE_RATE

    def check(self, options: TranscribeOptions) -> None:
        if options.language not in (None, self.language):
            raise InvalidOptionError(f"{self.name} recognises {self.language!r} only, not "
                                     f"{options.language!r}")
        if options.task == "translate":
            raise InvalidOptionError(f"{self.name} cannot translate speech; use --translate-to "
                                     "with an MT model")

    def detect_language(self, audio: np.ndarray) -> list[tuple[str, float]]:
        return [(self.language, 1.0)]

    # -- live -------------------------------------------------------------------------------------
    def open_stream(self, options: StreamOptions) -> NemoStream:
        for language in (options.language, *options.languages):
            if language not in (None, self.language):
                raise InvalidOptionError(f"{self.name} recognises {self.language!r} only")
        return NemoStream(self, options)

    def features(self, audio: np.ndarray) -> Any:
        """Log-mel features [features, frames] of ``audio``, as the model computes them."""
        torch = self._torch
        signal = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))[None]
        with self._lock, torch.inference_mode():
            feats, _ = self.preprocessor(
                input_signal=signal.to(self.model.device),
                length=torch.tensor([signal.shape[1]], device=self.model.device))
        # All frames, as NeMo's streaming buffer takes them (the last may be past ``length``).
        return feats[0]

    def chunk(self, stream: NemoStream, utterance: _NemoUtterance) -> ChunkJob | None:
        """The next chunk of ``utterance``, or None until enough audio has arrived."""
        g = self.geometry
        first = utterance.step == 0
        index = 0 if first else 1
        size, shift = g.chunk[index], g.shift[index]
        ended = utterance.end is not None
        audio = utterance.audio()
        if ended:
            total = len(audio) // self.hop + 1 if len(audio) else 0  # as the preprocessor
        else:
            # Frames whose STFT window lies wholly inside the audio so far.
            total = max(0, (len(audio) - self.n_fft // 2) // self.hop + 1)
            if total < utterance.frames_done + size:
                return None
        remaining = total - utterance.frames_done
        minimum = g.sampling_frames[index] if g.sampling_frames else 1
        if ended and min(size, remaining) < minimum:
            return ChunkJob(stream, utterance, None, 0, first, True, 0)
        feats = self.features(audio)
        total = min(total, int(feats.shape[-1]))
        begin = utterance.frames_done
        chunk = feats[:, begin: begin + size]
        torch = self._torch
        if first:
            cache = torch.zeros((feats.shape[0], g.pre_encode[0]), dtype=feats.dtype,
                                device=feats.device)
        else:
            cache = feats[:, max(0, begin - g.pre_encode[1]): begin]
            if cache.shape[-1] < g.pre_encode[1]:
                pad = torch.zeros((feats.shape[0], g.pre_encode[1] - cache.shape[-1]),
                                  dtype=feats.dtype, device=feats.device)
                cache = torch.cat((pad, cache), dim=-1)
        stacked = torch.cat((cache, chunk), dim=-1)
        length = min(int(stacked.shape[-1]), total - begin + int(cache.shape[-1]))
        last = ended and begin + shift >= total
        return ChunkJob(stream, utterance, stacked, length, first, last, shift,
                        min(total, begin + size))

    def decode(self, jobs: Sequence[ChunkJob], *, hurry: bool = False) -> list[ChunkResult | None]:
        """Encode the chunks of ``jobs``; chunks at the same stage share one batched call."""
        results: list[ChunkResult | None] = [None] * len(jobs)
        groups: dict[tuple[bool, bool, int], list[int]] = {}
        for index, job in enumerate(jobs):
            if job.features is not None:
                groups.setdefault((job.first, job.last, int(job.features.shape[-1])),
                                  []).append(index)
        for (first, last, _), members in groups.items():
            for index, result in zip(members, self._step([jobs[i] for i in members], first,
                                                         last), strict=True):
                results[index] = result
        return results

    def _step(self, jobs: list[ChunkJob], first: bool, last: bool) -> list[ChunkResult]:
        torch = self._torch
        model = self.model
        device = model.device
        signal = torch.stack([j.features for j in jobs]).to(device)
        lengths = torch.tensor([j.length for j in jobs], device=device)
        if first:
            channel, time_cache, channel_len = model.encoder.get_initial_cache_state(
                batch_size=len(jobs), device=device)
            previous = None
        else:
            caches = [j.utterance.cache for j in jobs]
            assert all(c is not None for c in caches)
            channel = torch.cat([c[0] for c in caches], dim=1)  # type: ignore[index]
            time_cache = torch.cat([c[1] for c in caches], dim=1)  # type: ignore[index]
            channel_len = torch.cat([c[2] for c in caches], dim=0)  # type: ignore[index]
            previous = [j.utterance.previous for j in jobs]
        with self._lock, torch.inference_mode():
            out = model.conformer_stream_step(
                processed_signal=signal, processed_signal_length=lengths,
                cache_last_channel=channel, cache_last_time=time_cache,
                cache_last_channel_len=channel_len, keep_all_outputs=last,
                previous_hypotheses=None if self.ctc else previous,
                previous_pred_out=previous if self.ctc else None,
                drop_extra_pre_encoded=0 if first else self.geometry.drop_extra,
                return_transcription=True)
        predictions, texts, channel, time_cache, channel_len, best = out[:6]
        results = []
        for i in range(len(jobs)):
            hypothesis = texts[i]
            text = hypothesis if isinstance(hypothesis, str) else str(
                getattr(hypothesis, "text", "") or "")
            cache = (channel[:, i:i + 1].clone(), time_cache[:, i:i + 1].clone(),
                     channel_len[i:i + 1].clone())
            kept = predictions[i] if self.ctc else best[i]
            results.append(ChunkResult(text, cache, kept))
        return results

    # -- whole recordings ----------------------------------------------------------------------
    def transcribe(self, audio: np.ndarray, options: TranscribeOptions,
                   speech: Sequence[Span] | None = None
                   ) -> tuple[Iterator[Segment], TranscriptionInfo]:
        """Stream ``audio`` through the model as fast as it goes; the finals are the segments.

        ``speech`` is ignored: the stream's own VAD gate cuts the utterances.
        """
        self.check(options)
        stream = self.open_stream(StreamOptions(language=self.language))
        # Fed as a live client sends it, each piece decoded as soon as it can be: where an
        # utterance ends depends on how much audio the encoder has heard when the VAD's offset
        # comes (see NemoStream._close), so this gives what a live session that keeps up gets.
        step = int(LIVE_FRAME_SECONDS * SAMPLE_RATE)
        segments: list[Segment] = []
        for begin in range(0, len(audio), step):
            stream.accept(audio[begin: begin + step])
            segments += self._drain(stream)
        stream.finish()
        segments += self._drain(stream)
        duration = len(audio) / SAMPLE_RATE
        info = TranscriptionInfo(
            language=self.language, language_probability=1.0, duration=duration,
            duration_after_vad=duration, task="transcribe", model=self.identifier,
            settings={"backend": "nemo-cache-aware", "vad": True})
        return iter(segments), info

    def _drain(self, stream: NemoStream) -> list[Segment]:
        found = []
        while (job := stream.next_job()) is not None:
            result = self.decode([job])[0]
            found += [u.segment for u in stream.complete(job, result) if u.segment.is_final]
        return found


def load_nemo(path: str | Path, *, device: str = "cpu", language: str = "en",
              att_context_size: Sequence[int] | None = None) -> NemoStreaming:
    """Load a ``.nemo`` cache-aware streaming model."""
    path = Path(path)
    if not path.is_file():
        raise ModelNotFoundError(str(path), [f"file {path}"], "Give the path of a .nemo file "
                                 "(a cache-aware FastConformer/Conformer checkpoint).")
    nemo_asr = _nemo_asr()
    import torch

    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    model = nemo_asr.models.ASRModel.restore_from(str(path), map_location=torch.device(device))
    return NemoStreaming(model, name=path.stem, language=language,
                         att_context_size=att_context_size, fingerprint=digest.hexdigest())

