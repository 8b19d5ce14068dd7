"""Load test of the live server: many concurrent sessions, minutes of real consultation each.

A server on loopback serves ``--sessions`` clients at once; each streams ``--minutes`` of a
different part of the four recorded OSCE consultations (``../shared/data/speech/fareez_osce_en``)
at real-time pace (``--speed``). What must hold under a load the machine cannot keep up with in
real time: no session loses speech (every segment of the batch transcript of the same audio is
covered by the session's finals, :mod:`eval.coverage`), no audio is dropped (``end`` reports
all the audio sent), and the server's memory stays flat. Also printed: finals per session
against the batch segment count, the text's WER against the batch transcript, final lag, the
largest backlog reported, and the resident memory over the run.

    python benchmarks/load_test.py [--model tiny.en] [--sessions 8] [--minutes 3]
        [--speed 1.0] [--json OUT]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from eval.coverage import Span, lost_segments
from eval.readers import read_manifest
from eval.wer import error_rate
from speech.audio import SAMPLE_RATE, load_audio
from speech.loader import load_asr
from speech.options import TranscribeOptions
from streaming.live.client import StreamResult, stream_audio
from streaming.live.engine import Engine
from streaming.live.server import serve_in_thread

REPO = Path(__file__).resolve().parents[1]
OSCE = REPO.parent / "shared" / "data" / "speech" / "fareez_osce_en"


def resident_mb() -> float:
    """Resident memory of this process (the server runs in it), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class MemorySampler(threading.Thread):
    def __init__(self, interval: float = 2.0) -> None:
        super().__init__(daemon=True)
        self.interval = interval
        self.samples: list[tuple[float, float]] = []
        self._halt = threading.Event()

    def run(self) -> None:
        began = time.monotonic()
        while not self._halt.wait(self.interval):
            self.samples.append((time.monotonic() - began, resident_mb()))

    def stop(self) -> None:
        self._halt.set()
        self.join()


def clips(sessions: int, minutes: float) -> list[tuple[str, np.ndarray]]:
    """Distinct audio for each session: recording i % 4, the (i // 4)-th stretch of it."""
    entries = read_manifest(OSCE / "manifest.jsonl")
    audio = [load_audio(e.audio_filepath) for e in entries]
    size = int(minutes * 60 * SAMPLE_RATE)
    found = []
    for i in range(sessions):
        recording, stretch = i % len(audio), i // len(audio)
        piece = audio[recording][stretch * size:(stretch + 1) * size]
        if len(piece) < size // 2:
            raise SystemExit(f"recording {entries[recording].audio_filepath} is too short for "
                             f"{sessions} sessions of {minutes} min")
        found.append((f"{entries[recording].audio_filepath.stem}@{stretch * minutes:g}m",
                      piece))
    return found


async def run_sessions(url: str, audio: list[np.ndarray], speed: float) -> list[StreamResult]:
    async def one(index: int) -> StreamResult:
        await asyncio.sleep(0.5 * index)
        return await stream_audio(url, audio[index], {"language": "en", "entities": False},
                                  speed=speed, timeout=3600)

    return list(await asyncio.gather(*(one(i) for i in range(len(audio)))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="tiny.en")
    parser.add_argument("--sessions", type=int, default=8)
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--speed", type=float, default=1.0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    asr = load_asr(args.model)
    named = clips(args.sessions, args.minutes)
    print(f"{asr.identifier}: {args.sessions} sessions x {args.minutes:g} min at "
          f"{args.speed:g}x real time", flush=True)
    batch = []
    for _, audio in named:
        segments, _ = asr.transcribe(audio, TranscribeOptions(language="en"))
        batch.append(list(segments))
    engine = Engine(asr, name=asr.identifier)
    sampler = MemorySampler()
    with serve_in_thread(engine, asr) as base:
        before = resident_mb()
        sampler.start()
        began = time.monotonic()
        results = asyncio.run(run_sessions(base.replace("http", "ws") + "/v1/stream",
                                           [a for _, a in named], args.speed))
        wall = time.monotonic() - began
        sampler.stop()
    rows = []
    print("\n| session | batch segments | finals | lost | WER vs batch | audio sent / "
          "received (s) | max backlog (s) | final lag p50 / p95 (s) |")
    print("|---|---|---|---|---|---|---|---|")
    for (name, audio), segments, result in zip(named, batch, results, strict=True):
        finals = result.of_type("final")
        lost = lost_segments([Span(s.start, s.end, tuple(Span(w.start, w.end) for w in s.words))
                              for s in segments],
                             [Span(f["start"], f["end"]) for f in finals])
        end = result.of_type("end")
        received = end[0]["audio_seconds"] if end else 0.0
        backlog = max((e["backlog"] for e in result.of_type("status")), default=0.0)
        lags = [f["received"] * args.speed - f["end"] for f in finals]  # on the audio clock
        wer = error_rate([" ".join(s.text for s in segments)], [result.text]).score
        row: dict[str, Any] = {
               "session": name, "batch_segments": len(segments), "finals": len(finals),
               "lost": len(lost), "lost_segments": [segments[i].text for i in lost],
               "wer_vs_batch": wer, "sent_seconds": len(audio) / SAMPLE_RATE,
               "received_seconds": received, "max_backlog": backlog,
               "final_lag": [float(np.percentile(lags, q)) for q in (50, 95)] if lags
               else [float("nan")] * 2}
        rows.append(row)
        lag = row["final_lag"]
        print(f"| {name} | {len(segments)} | {len(finals)} | {len(lost)} | {wer:.1f} | "
              f"{row['sent_seconds']:.1f} / {received:.1f} | {backlog:.1f} | "
              f"{lag[0]:.1f} / {lag[1]:.1f} |", flush=True)
    memory = sampler.samples
    quarter = [mb for t, mb in memory if t >= wall / 4]
    growth = (quarter[-1] - quarter[0]) if len(quarter) > 1 else float("nan")
    peak = max((mb for _, mb in memory), default=float("nan"))
    print(f"\nwall time {wall:.0f} s for {sum(r['sent_seconds'] for r in rows):.0f} s of audio; "
          f"lost segments {sum(r['lost'] for r in rows)}; audio dropped "
          f"{sum(max(0.0, r['sent_seconds'] - r['received_seconds']) for r in rows):.2f} s")
    print(f"resident memory: {before:.0f} MB before, peak {peak:.0f} MB, change from a quarter "
          f"of the run to its end {growth:+.0f} MB")
    if args.json:
        args.json.write_text(json.dumps({
            "model": asr.identifier, "sessions": args.sessions, "minutes": args.minutes,
            "speed": args.speed, "wall_seconds": wall, "rows": rows,
            "memory_mb": memory, "memory_before_mb": before, "memory_growth_mb": growth,
            "metrics": engine.metrics()}, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
