"""What ``--speakers`` costs in batch: the wall time of recognising a set of recordings, against
the wall time of then adding ``--speakers N`` to the finished batch (which decodes the audio
again, loads the diarizer and the role model, diarizes and assigns words to speakers, without
recognising again).

Both runs are ``medstream transcribe`` exactly as a user runs it, on the same recordings, one
after the other; the ratio is printed, with the speakers found in each recording and their
roles. Usage::

    .venv/bin/python benchmarks/diarization_cost.py                       # OSCE set, base, 2
    .venv/bin/python benchmarks/diarization_cost.py --model tiny.en --speakers auto
    .venv/bin/python benchmarks/diarization_cost.py --out /tmp/osce   # keep the transcripts

Wall times on a shared 2-core machine vary by ±20 % from run to run (far more when others
load it): compare within one run, and compare the CPU times too.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[1]
OSCE = REPO.parent / "shared" / "data" / "speech" / "fareez_osce_en" / "audio"
MEDSTREAM = str(Path(sys.executable).with_name("medstream"))


def transcribe(audio: Path, out: Path, extra: list[str]) -> tuple[float, float]:
    """Wall time and CPU time (user + system) of one ``medstream transcribe`` run: on a busy
    machine the CPU time varies less than the wall time."""
    started, used = time.perf_counter(), _children_cpu()
    subprocess.run([MEDSTREAM, "transcribe", str(audio), "-o", str(out), "--offline",
                    "--format", "json", *extra], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started, _children_cpu() - used


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("audio", nargs="?", type=Path, default=OSCE)
    parser.add_argument("--model", default="base")
    parser.add_argument("--speakers", default="2")
    parser.add_argument("--out", type=Path, default=None,
                        help="keep the transcripts here, for medstream eval diarization "
                             "(a new folder: transcripts already there are not redone)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        out = args.out or Path(scratch)
        common = ["--model", args.model]
        recognise_times = transcribe(args.audio, out, common)
        speakers_times = transcribe(args.audio, out, [*common, "--speakers", args.speakers])
        audio_seconds = 0.0
        print(f"{args.audio} with {args.model}, --speakers {args.speakers}:")
        for path in sorted(out.rglob("*.json")):
            document = json.loads(path.read_text(encoding="utf-8"))
            audio_seconds += float(document["duration"])
            table = ", ".join(f"{s['id']} {s['role']} {s['talk_time']:.0f} s"
                              for s in document.get("speakers", []))
            print(f"  {path.stem}: {table}")
    (recognise, recognise_cpu), (speakers, speakers_cpu) = recognise_times, speakers_times
    print(f"  recognise: {recognise:.1f} s ({audio_seconds / recognise:.1f}x real time), "
          f"{recognise_cpu:.1f} s CPU")
    print(f"  add --speakers to the finished batch: {speakers:.1f} s, {speakers_cpu:.1f} s CPU")
    print(f"  speakers / recognition: wall time {speakers / recognise:.2f}, "
          f"CPU time {speakers_cpu / recognise_cpu:.2f}")


if __name__ == "__main__":
    main()
