"""Batch transcription on a Ray cluster: ``medstream transcribe ... --ray ADDRESS``.

The file list becomes a Ray Dataset that streams through the stages of
:class:`streaming.batch.job.FileStages`:

1. *prepare*, Ray tasks on CPU workers: hash the file, look for a previous run's transcript,
   decode the audio and find the speech with the VAD (Silero);
2. *recognise*, a pool of actors, each holding one recogniser (a GPU each when the cluster has
   GPUs); Whisper's speech translation runs here too, as it needs the recogniser, and so does
   diarization (``--speakers``, its own models in each actor), as it needs the decoded audio
   and comes before the entities and translations of the segments it splits;
3. *annotate* and *translate* (text MT), the enrichment stage (:mod:`streaming.enrich`, which
   the live server's finals go through too), one actor pool each, when ``--entities`` and
   ``--mt-model`` ask for them;
4. the driver (this process) writes the outputs as the files come back, atomically, with the
   same resume and per-file error semantics as the local mode: all stages are the local mode's
   own code, and an error in one file travels with it to the driver instead of failing the
   Dataset.

Every node must see the input files at the same paths (shared storage) and have medstream
installed; the outputs are written where the driver runs. ``ray`` is the optional extra
``medstream[ray]``.
"""

from __future__ import annotations

import logging
import os
import pickle
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from speech.errors import MedstreamError
from streaming.batch.job import (
    BatchJob,
    BatchSummary,
    FileOutcome,
    FileStages,
    FileWork,
    Fingerprints,
    InputFile,
    PipelineInfo,
    ProgressListener,
    auto_parallelism,
)

if TYPE_CHECKING:  # prepare tasks import this module: keep torch out of them
    from streaming.stages import PipelineSpec

logger = logging.getLogger(__name__)

ASR_RESERVE = 0.2
"""Of each core (or GPU) an ASR actor is given, the share left to the lighter stages: the
prepare tasks and the text actors are scheduled into it, so that actors on every core cannot
starve the stages that feed them. Decoding and VAD take a few percent of recognition's time."""
LIGHT_SHARE = 0.1
"""CPUs (or GPUs) a prepare task or a text actor asks for."""


class RayUnavailableError(MedstreamError):
    """``--ray`` without the ``ray`` extra, or a cluster that cannot be reached."""


@dataclass(frozen=True)
class ActorPlan:
    """How many actors of each kind, and the resources each asks Ray for."""

    device: str
    asr_actors: int
    asr_cpus: float
    asr_gpus: float
    cpu_threads: int
    light_cpus: float
    light_gpus: float

    @classmethod
    def for_cluster(cls, resources: dict[str, float], requested_device: str,
                    actors: int = 0) -> ActorPlan:
        """One recogniser per GPU when the cluster has GPUs (unless ``--device cpu``), else one
        single-threaded recogniser per core (as the local mode's workers); ``actors`` > 0
        overrides the count (more actors than GPUs or cores share them)."""
        cpus = max(1, int(resources.get("CPU", 1)))
        gpus = int(resources.get("GPU", 0))
        if requested_device == "cuda" and gpus == 0:
            raise RayUnavailableError("--device cuda, but the Ray cluster has no GPU")
        if gpus and requested_device != "cpu":
            count = actors or gpus
            share = min(1.0, gpus / count) * (1 - ASR_RESERVE)
            return cls("cuda", count, 1.0, round(share, 4), 0, 1.0, LIGHT_SHARE)
        count = actors or cpus
        threads = max(1, cpus // count)
        share = min(float(threads), cpus / count) * (1 - ASR_RESERVE)
        return cls("cpu", count, round(share, 4), 0.0, threads, LIGHT_SHARE, 0.0)


def _describe(spec: PipelineSpec) -> PipelineInfo:
    """Load every model as an actor will, and report what they are (run as a Ray task)."""
    backend, annotator, translator = spec.load()
    return PipelineInfo.of(backend, spec.options, annotator, translator, spec.load_speakers())


def _describe_remotely(ray: Any, spec: PipelineSpec, plan: ActorPlan) -> PipelineInfo:
    """:func:`_describe` in a Ray task with a recogniser actor's resources (a GPU)."""
    # max_calls=1: the worker that loaded the models for this check exits afterwards.
    describe = ray.remote(num_cpus=plan.asr_cpus, num_gpus=plan.asr_gpus,
                          max_calls=1)(_describe)
    try:
        return cast(PipelineInfo, ray.get(describe.remote(spec)))
    except ray.exceptions.RayTaskError as exc:
        cause = exc.cause if isinstance(exc.cause, Exception) else exc
        if isinstance(cause, MedstreamError | ValueError):
            raise cause from None
        raise


def _pack(work: FileWork) -> bytes:
    return pickle.dumps(work, protocol=pickle.HIGHEST_PROTOCOL)


def _encode(works: list[FileWork], indices: Any) -> dict[str, np.ndarray]:
    blobs = np.empty(len(works), dtype=object)
    blobs[:] = [_pack(w) for w in works]
    return {"index": np.asarray(indices), "work": blobs}


def _prepare(row: dict[str, Any], job: BatchJob, prints: Fingerprints,
             find_speech: bool) -> dict[str, Any]:
    item = InputFile(Path(row["path"]), Path(row["stem"]))
    work = FileStages(job, prints).prepare(item, find_speech=find_speech)
    return {"index": row["index"], "work": _pack(work)}


class _StageActor:
    """Runs some stages of :class:`FileStages` over batches of pickled :class:`FileWork`."""

    def __init__(self, stages: FileStages,
                 steps: tuple[Callable[[FileWork], FileWork], ...]) -> None:
        self.stages = stages
        self.steps = steps

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        works = []
        for blob in batch["work"]:
            work = pickle.loads(blob)
            for step in self.steps:
                work = step(work)
            works.append(work)
        return _encode(works, batch["index"])


class RecogniseActor(_StageActor):
    """One recogniser, and Whisper's speech translation, which needs it; the diarizer, which
    needs the audio.

    It also runs the stages that need no model of their own: taking entities or translations
    a previous run wrote out of the transcript when this run asks for none.
    """

    def __init__(self, spec: PipelineSpec, job: BatchJob, prints: Fingerprints) -> None:
        backend = spec.load_backend()
        speech = prints.translation_method == "speech"
        stages = FileStages(job, prints, backend=backend,
                            translator=spec.load_translator(backend) if speech else None,
                            speakers=spec.load_speakers())
        steps = [stages.recognise, stages.diarize]
        if prints.entities is None:
            steps.append(stages.annotate)
        if prints.translation_method != "text":
            steps.append(stages.translate)
        # Nothing after this actor needs the samples: they do not travel further.
        steps.append(lambda work: replace(work, audio=None, speech=None))
        super().__init__(stages, tuple(steps))


class AnnotateActor(_StageActor):
    """One entity recognizer."""

    def __init__(self, spec: PipelineSpec, job: BatchJob, prints: Fingerprints) -> None:
        stages = FileStages(job, prints, annotator=spec.load_annotator())
        super().__init__(stages, (stages.annotate,))


class TranslateActor(_StageActor):
    """One text translation model (with the glossaries)."""

    def __init__(self, spec: PipelineSpec, job: BatchJob, prints: Fingerprints) -> None:
        stages = FileStages(job, prints, translator=spec.load_translator(None))
        super().__init__(stages, (stages.translate,))


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise RayUnavailableError("--ray needs Ray: pip install 'medstream[ray]'") from None
    return ray


class RayBatch:
    """Runs a :class:`BatchJob` as a Ray Dataset; the counterpart of ``BatchTranscriber``."""

    def __init__(self, spec: PipelineSpec, job: BatchJob, plan: ActorPlan,
                 info: PipelineInfo) -> None:
        """``spec``: as the actors load it (their device and threads)."""
        self.spec = spec
        self.job = job
        self.plan = plan
        self.info = info
        self.listener = ProgressListener()
        # CTranslate2's int8 results on CPU depend on OMP_NUM_THREADS even with one intra-op
        # thread (tiny.en: a word's end 1.95 s vs 1.93 s), and Ray sets it to each worker's
        # CPU share: the workers get the value a local run on this machine has, so that --ray
        # and the local mode write the same transcripts.
        self.env = {"OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS")
                    or str(os.cpu_count() or 1)}

    @classmethod
    def connect(cls, address: str, spec: PipelineSpec, job: BatchJob, actors: int = 0,
                auto_batch: bool = False, verbose: bool = False) -> RayBatch:
        """Join the cluster at ``address`` (``local`` starts one on this machine, ``auto``
        finds a running one) unless this process is connected already, plan the actors and
        load the models once to check them and learn their fingerprints. ``auto_batch``: the
        batch size is the default for the actors' device (the driver may have no GPU).
        Ray's own warnings are shown with ``verbose`` only."""
        ray = _ray()
        level = logging.WARNING if verbose else logging.ERROR
        if not ray.is_initialized():
            try:
                ray.init(address=None if address == "local" else address,
                         include_dashboard=False, logging_level=level,
                         configure_logging=True)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise RayUnavailableError(f"cannot reach the Ray cluster at {address!r}: "
                                          f"{exc}") from None
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False
        context.print_on_execution_start = False
        for name in ("ray", "ray.data"):
            logging.getLogger(name).setLevel(level)
        plan = ActorPlan.for_cluster(ray.cluster_resources(), spec.model_options.device, actors)
        if auto_batch:
            options = replace(spec.options,
                              batch_size=auto_parallelism(plan.device == "cuda", 1)[1])
            spec, job = replace(spec, options=options), replace(job, options=options)
        actor_spec = spec.on("cuda" if plan.device == "cuda" else "cpu",
                             cpu_threads=plan.cpu_threads)
        if plan.device == "cpu":
            # CPU actors load what this process can load: check here, without a worker
            # process to start (a few seconds of imports on a small machine).
            info = _describe(actor_spec)
        else:
            info = _describe_remotely(ray, actor_spec, plan)
        return cls(actor_spec, job, plan, info)

    def dataset(self, inputs: list[InputFile]) -> Any:
        """The lazy Dataset of the batch: one row per file, each its own block."""
        ray = _ray()
        plan, prints = self.plan, self.info.prints
        rows = [{"index": i, "path": str(item.path), "stem": str(item.stem)}
                for i, item in enumerate(inputs)]
        ds = ray.data.from_items(rows, override_num_blocks=max(1, len(rows)))
        runtime_env = {"env_vars": self.env}
        ds = ds.map(_prepare, fn_kwargs={"job": self.job, "prints": prints,
                                         "find_speech": not self.spec.model.endswith(".nemo")},
                    num_cpus=LIGHT_SHARE, runtime_env=runtime_env)
        common = {"fn_constructor_kwargs": {"spec": self.spec, "job": self.job,
                                            "prints": prints},
                  "batch_size": 1, "batch_format": "numpy", "runtime_env": runtime_env}
        pool = ray.data.ActorPoolStrategy(size=min(plan.asr_actors, len(rows)))
        ds = ds.map_batches(RecogniseActor, compute=pool, num_cpus=plan.asr_cpus,
                            num_gpus=plan.asr_gpus, **common)
        light = {"compute": ray.data.ActorPoolStrategy(size=1), "num_cpus": plan.light_cpus,
                 "num_gpus": plan.light_gpus, **common}
        if self.spec.entities is not None:
            ds = ds.map_batches(AnnotateActor, **light)
        if prints.translation_method == "text":
            ds = ds.map_batches(TranslateActor, **light)
        return ds

    def run(self, inputs: list[InputFile],
            on_outcome: Callable[[FileOutcome], None] | None = None,
            durations: dict[Path, float | None] | None = None) -> BatchSummary:
        """Transcribe every input on the cluster; outcomes keep the order of ``inputs``.

        Ctrl-C stops the batch: files already written are kept, the others are marked
        ``interrupted`` and a re-run resumes.
        """
        durations = durations or {}
        finisher = FileStages(self.job, self.info.prints)
        outcomes: dict[int, FileOutcome] = {}
        interrupted = False
        try:
            for index, work in self._results(inputs):
                outcome = finisher.finish(work)
                outcomes[index] = outcome
                self.listener.file_finished(outcome, durations.get(outcome.input.path))
                if on_outcome is not None:
                    on_outcome(outcome)
        except KeyboardInterrupt:
            interrupted = True
        ordered = [outcomes.get(i, FileOutcome(item, "interrupted"))
                   for i, item in enumerate(inputs)]
        return BatchSummary(ordered, interrupted=interrupted)

    def _results(self, inputs: list[InputFile]) -> Iterator[tuple[int, FileWork]]:
        if not inputs:
            return
        for row in self.dataset(inputs).iter_rows():
            yield int(row["index"]), pickle.loads(row["work"])
