"""Throughput of `medstream transcribe --ray` against the local mode on the same files.

Both run from this one process, one after the other, with the same model and settings:

* local: the batch job as ``medstream transcribe`` runs it (one model, a thread per core);
* ray: ``--ray local``: a Ray instance started on this machine, prepare tasks (hashing, decoding,
  VAD), one recogniser actor per core, the driver writing the outputs.

Both timings include everything a user waits for: loading the model, and for Ray starting the
instance, checking the models in a task and starting the actors. Printed: audio seconds per
wall second of each, the ratio, Ray's overhead in percent, its start-up alone, whether the two
wrote the same files, and what the prepare stage (decoding and VAD) costs per audio hour on one
core, which says how many CPU cores a GPU recogniser needs to be kept fed. Usage::

    .venv/bin/python benchmarks/ray_batch.py                 # the 4 OSCE consultations, tiny.en
    .venv/bin/python benchmarks/ray_batch.py --model base --limit 2

Timings on a shared 2-core machine vary by ±20 % from run to run: compare the ratio of one run.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import ray

from eval.readers import read_manifest
from speech.audio import load_audio
from speech.backends.faster_whisper import resolve_device, speech_runs
from speech.options import ModelOptions, TranscribeOptions
from streaming.batch.job import (
    BatchJob,
    BatchSummary,
    BatchTranscriber,
    auto_parallelism,
    discover_inputs,
)
from streaming.batch.ray_job import RayBatch
from streaming.stages import PipelineSpec

DEFAULT_MANIFEST = (Path(__file__).resolve().parents[2] / "shared" / "data" / "speech"
                    / "fareez_osce_en" / "manifest.jsonl")


def _files(out: Path) -> dict[str, bytes]:
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*"))
            if p.is_file()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--manifest", type=Path, default=DEFAULT_MANIFEST)
    parser.add_argument("--model", default="tiny.en")
    parser.add_argument("--language", default="en")
    parser.add_argument("--limit", type=int, default=0, help="first N files (0 = all)")
    args = parser.parse_args()

    rows = read_manifest(args.manifest)
    if args.limit:
        rows = rows[:args.limit]
    paths = [row.audio_filepath for row in rows]
    audio = sum(row.duration for row in rows)
    items, _ = discover_inputs(paths)
    workers, batch_size = auto_parallelism(resolve_device("auto") == "cuda", len(items))
    options = TranscribeOptions(language=args.language, batch_size=batch_size)
    spec = PipelineSpec(args.model, ModelOptions(workers=workers), options,
                        allow_download=False)
    print(f"{len(items)} files, {audio / 60:.1f} min of audio, model {args.model}, "
          f"{os.cpu_count()} CPU cores")

    with tempfile.TemporaryDirectory() as tmp:
        local_out, ray_out = Path(tmp) / "local", Path(tmp) / "ray"
        start = time.perf_counter()
        backend = spec.load_backend()
        local = BatchTranscriber(backend, BatchJob(local_out, options),
                                 workers=workers).run(items)
        local_wall = time.perf_counter() - start

        start = time.perf_counter()
        runner = RayBatch.connect("local", spec, BatchJob(ray_out, options))
        startup = time.perf_counter() - start
        distributed = runner.run(items)
        ray_wall = time.perf_counter() - start
        ray.shutdown()
        same = _files(local_out) == _files(ray_out)

    for name, summary in (("local", local), ("ray", distributed)):
        _check(name, summary)
    print(f"local: {local_wall:7.1f} s  {audio / local_wall:6.2f} audio s per s "
          f"({workers} threads, one model)")
    print(f"ray:   {ray_wall:7.1f} s  {audio / ray_wall:6.2f} audio s per s "
          f"({runner.plan.asr_actors} actors; start-up {startup:.1f} s)")
    print(f"ray / local throughput: {local_wall / ray_wall:.3f}  "
          f"(overhead {100 * (ray_wall / local_wall - 1):+.1f} %)")
    print(f"same outputs: {same}")
    start = time.perf_counter()
    for item in items:
        speech_runs(load_audio(item.path), options)
    prepare = time.perf_counter() - start
    print(f"prepare stage alone (decode + VAD, one process): {prepare:.1f} s, "
          f"{3600 * prepare / audio:.0f} s per audio hour")


def _check(name: str, summary: BatchSummary) -> None:
    failed = [o.error for o in summary.outcomes if o.status != "done"]
    if failed:
        raise SystemExit(f"{name}: files not done: {failed}")


if __name__ == "__main__":
    main()
