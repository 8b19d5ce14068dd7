"""Throughput and WER of `medstream transcribe` against a plain faster-whisper loop.

Both run in this one process, on the same recordings, with the same model:

* plain loop: ``WhisperModel(model)`` with its defaults, then ``model.transcribe(path)`` for
  each file in turn, the way the faster-whisper README does it;
* medstream: the batch job exactly as ``medstream transcribe`` runs it with its defaults
  (decoding, hashing, resume check, writing txt/srt/vtt/json included).

Audio seconds per wall second are printed for both, with their ratio, and corpus WER of both
against the manifest references. Usage::

    .venv/bin/python benchmarks/batch_throughput.py                     # OSCE set, tiny.en
    .venv/bin/python benchmarks/batch_throughput.py --model base
    .venv/bin/python benchmarks/batch_throughput.py \
        --manifest ../shared/data/speech/librispeech_wlk/manifest.jsonl

Timings on a shared 2-core machine vary by ±20 % from run to run: compare ratios from one run.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from faster_whisper import WhisperModel

from eval.readers import read_manifest
from eval.wer import error_rate
from speech.backends.faster_whisper import resolve_device
from speech.catalog import resolve_asr_model
from speech.loader import load_asr
from speech.options import ModelOptions, TranscribeOptions
from streaming.batch.job import BatchJob, BatchTranscriber, auto_parallelism, discover_inputs

DEFAULT_MANIFEST = (Path(__file__).resolve().parents[2] / "shared" / "data" / "speech"
                    / "fareez_osce_en" / "manifest.jsonl")


def plain_loop(model_name: str, paths: list[Path], language: str | None) -> tuple[list[str], float]:
    resolved = resolve_asr_model(model_name)
    location = str(resolved.path) if resolved.path else model_name
    files = dict(resolved.files) if resolved.files else None
    start = time.perf_counter()
    model = WhisperModel(location, device="cpu", files=files)
    texts = []
    for path in paths:
        segments, _ = model.transcribe(str(path), language=language)
        texts.append(" ".join(s.text.strip() for s in segments))
    return texts, time.perf_counter() - start


def medstream(model_name: str, paths: list[Path], language: str | None,
              out: Path) -> tuple[list[str], float, str]:
    workers, batch_size = auto_parallelism(resolve_device("auto") == "cuda", len(paths))
    start = time.perf_counter()
    backend = load_asr(model_name, ModelOptions(workers=workers))
    job = BatchJob(out_dir=out, options=TranscribeOptions(language=language,
                                                          batch_size=batch_size))
    inputs, _ = discover_inputs(paths)
    summary = BatchTranscriber(backend, job, workers=workers).run(inputs)
    elapsed = time.perf_counter() - start
    failed = [o.error for o in summary.outcomes if o.status != "done"]
    if failed:
        raise SystemExit(f"medstream did not transcribe every file: {failed}")
    return [o.text for o in summary.outcomes], elapsed, \
        f"workers={workers}, batch_size={batch_size}, {backend.identifier}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--manifest", type=Path, default=DEFAULT_MANIFEST)
    parser.add_argument("--model", default="tiny.en")
    parser.add_argument("--language", default="en", help="ISO code, or 'auto'")
    parser.add_argument("--limit", type=int, default=0, help="first N manifest rows (0 = all)")
    args = parser.parse_args()
    if not args.manifest.is_file():
        raise SystemExit(f"{args.manifest} is absent: pass --manifest")
    rows = read_manifest(args.manifest)
    rows = rows[: args.limit] if args.limit else rows
    paths = [r.audio_filepath for r in rows]
    references = [r.text for r in rows]
    audio_seconds = sum(r.duration for r in rows)
    language = None if args.language == "auto" else args.language
    lang = language or rows[0].lang or "en"

    plain_texts, plain_wall = plain_loop(args.model, paths, language)
    with tempfile.TemporaryDirectory() as out:
        ours_texts, ours_wall, settings = medstream(args.model, paths, language, Path(out))

    plain_wer = error_rate(references, plain_texts, language=lang)
    ours_wer = error_rate(references, ours_texts, language=lang)
    print(f"recordings: {len(rows)} from {args.manifest} ({audio_seconds / 60:.1f} audio min)")
    print(f"model: {args.model}; medstream settings: {settings}")
    print(f"{'':28}{'audio s / wall s':>18}{'wall s':>10}{'WER %':>9}")
    print(f"{'plain faster-whisper loop':28}{audio_seconds / plain_wall:>18.2f}"
          f"{plain_wall:>10.1f}{plain_wer.score:>9.2f}")
    print(f"{'medstream transcribe':28}{audio_seconds / ours_wall:>18.2f}"
          f"{ours_wall:>10.1f}{ours_wer.score:>9.2f}")
    print(f"speed-up: {plain_wall / ours_wall:.2f}x; WER difference: "
          f"{ours_wer.score - plain_wer.score:+.2f} points ({ours_wer.signature})")
    print("WER % per recording (plain → medstream):")
    for row, ref, plain, ours in zip(rows, references, plain_texts, ours_texts, strict=True):
        before = error_rate([ref], [plain], language=lang).score
        after = error_rate([ref], [ours], language=lang).score
        name = os.path.relpath(row.audio_filepath, args.manifest.parent)
        print(f"  {name:40} {before:6.2f} → {after:6.2f}")


if __name__ == "__main__":
    main()
