"""Live latency and capacity of `medstream serve` on this machine, on the audio clock.

Part 1 (in one process, no server): the recogniser's cost per second of streamed audio when
partials are decoded on the audio alone (what the server does) against Whisper's padded 30 s
window (the obvious alternative), on the same stream; prints the ratio and both WERs.

Part 2: a server on loopback and N clients streaming the same recording at real-time pace
(starts staggered by 0.37 s). For each N: first-partial latency (first partial with a word,
from the utterance's onset) and final lag (final received, minus the utterance's end), p50 and
p95 over all utterances of all clients; WER of each client's finals against the reference; audio
the server says it received against audio sent (dropped = 0 is required). The largest N whose
final-lag p95 stays under 3 s is the machine's capacity.

    python benchmarks/stream_latency.py [--model tiny.en] [--audio FILE --reference TXT]
        [--streams 1,2,4,6] [--device cpu|cuda] [--max-batch N] [--json OUT]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from eval.latency import Emission, FinalLag, FirstPartialLatency, UtteranceTimeline
from eval.wer import error_rate
from speech.audio import load_audio
from speech.backends.faster_whisper import resolve_device
from speech.loader import load_asr
from speech.online import OnlineTranscriber, StreamOptions, decode_jobs
from speech.options import ModelOptions, TranscribeOptions
from streaming.live.client import StreamResult, stream_audio
from streaming.live.engine import Engine, EngineConfig
from streaming.live.server import serve_in_thread

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "samples" / "osce_car0001_50s.mp3"


def decode_cost(asr: Any, audio: np.ndarray, short: bool) -> tuple[float, str]:
    """Seconds spent decoding one stream fed as fast as possible, and its finals' text."""
    import speech.online

    saved = speech.online.PARTIAL_CONTEXT
    if not short:
        speech.online.PARTIAL_CONTEXT = 3000  # Whisper's full window
    try:
        stream = OnlineTranscriber(StreamOptions(language="en"))
        spent, finals = 0.0, []
        for begin in range(0, len(audio) + 1600, 1600):
            if begin < len(audio):
                stream.accept(audio[begin:begin + 1600])
            else:
                stream.finish()
            while (job := stream.next_job()) is not None:
                began = time.perf_counter()
                result = decode_jobs(asr, [job])[0]
                spent += time.perf_counter() - began
                finals += [u.segment.text for u in stream.complete(job, result)
                           if u.segment.is_final]
                if begin < len(audio):
                    break
        return spent, " ".join(finals)
    finally:
        speech.online.PARTIAL_CONTEXT = saved


def timelines(result: StreamResult) -> list[UtteranceTimeline]:
    """One timeline per final: its partials and the final, at client receive times."""
    partials: dict[int, list[dict[str, Any]]] = {}
    for event in result.of_type("partial"):
        partials.setdefault(event["utterance"], []).append(event)
    found = []
    for final in result.of_type("final"):
        emissions = [Emission(e["received"], e["text"]) for e in partials.pop(
            final["utterance"], []) if e["received"] <= final["received"]]
        emissions.append(Emission(max([final["received"], *(e.time for e in emissions)]),
                                  final["text"], final=True))
        found.append(UtteranceTimeline(final["start"], max(final["end"], final["start"]),
                                       tuple(emissions)))
    return found


def percentiles(values: list[float]) -> tuple[float, float]:
    if not values:
        return float("nan"), float("nan")
    return float(np.percentile(values, 50)), float(np.percentile(values, 95))


async def run_clients(url: str, audio: np.ndarray, count: int) -> list[StreamResult]:
    async def one(index: int) -> StreamResult:
        await asyncio.sleep(0.37 * index)
        return await stream_audio(url, audio, {"language": "en", "entities": False})

    return list(await asyncio.gather(*(one(i) for i in range(count))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="tiny.en")
    parser.add_argument("--audio", type=Path, default=SAMPLE)
    parser.add_argument("--reference", type=Path, default=SAMPLE.with_suffix(".txt"))
    parser.add_argument("--streams", default="1,2,4,6")
    parser.add_argument("--device", default="auto", help="cpu, cuda or auto")
    parser.add_argument("--max-batch", type=int, default=0,
                        help="windows per model call (0: 4 on CPU, 16 on CUDA)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    device = resolve_device(args.device)
    asr = load_asr(args.model, ModelOptions(device="cuda" if device == "cuda" else "cpu"))
    gpu = device == "cuda"
    config = EngineConfig(max_batch=args.max_batch or (16 if gpu else 4), batch_finals=gpu)
    audio = load_audio(args.audio)
    reference = args.reference.read_text(encoding="utf-8")
    seconds = len(audio) / 16000
    segments, _ = asr.transcribe(audio, TranscribeOptions(language="en"))
    batch_wer = error_rate([reference], [" ".join(s.text for s in segments)]).score
    report: dict[str, Any] = {"model": asr.identifier, "audio": str(args.audio),
                              "audio_seconds": seconds, "batch_wer": batch_wer}

    short_cost, short_text = decode_cost(asr, audio, short=True)
    full_cost, full_text = decode_cost(asr, audio, short=False)
    report["decode_cost"] = {
        "short_partials_s_per_audio_s": short_cost / seconds,
        "padded_partials_s_per_audio_s": full_cost / seconds,
        "ratio": full_cost / short_cost,
        "wer_short": error_rate([reference], [short_text]).score,
        "wer_padded": error_rate([reference], [full_text]).score}
    cost = report["decode_cost"]
    print(f"{asr.identifier}, {seconds:.1f} s of audio, batch WER {batch_wer:.1f}")
    print(f"decode cost per audio second: short-context partials "
          f"{cost['short_partials_s_per_audio_s']:.3f} s, padded partials "
          f"{cost['padded_partials_s_per_audio_s']:.3f} s -> {cost['ratio']:.2f}x less work "
          f"(finals WER {cost['wer_short']:.1f} vs {cost['wer_padded']:.1f})")

    rows = []
    print("\n| streams | first partial p50 / p95 (s) | final lag p50 / p95 (s) | WER mean "
          "(batch) | audio dropped (s) | lagging events |")
    print("|---|---|---|---|---|---|")
    for count in [int(x) for x in args.streams.split(",")]:
        engine = Engine(asr, config=config, name=asr.identifier)
        with serve_in_thread(engine, asr) as base:
            results = asyncio.run(run_clients(base.replace("http", "ws") + "/v1/stream", audio,
                                              count))
        lines = [t for r in results for t in timelines(r)]
        first = [s for s in FirstPartialLatency().sentence_scores(lines) if s is not None]
        lag = [s for s in FinalLag().sentence_scores(lines) if s is not None]
        wers = [error_rate([reference], [r.text]).score for r in results]
        received = [r.of_type("end")[0]["audio_seconds"] if r.of_type("end") else 0.0
                    for r in results]
        dropped = sum(max(0.0, seconds - got) for got in received)
        lagging = sum(1 for r in results for e in r.of_type("status")
                      if e["state"] == "lagging")
        row: dict[str, Any] = {"streams": count, "first_partial": percentiles(first),
               "final_lag": percentiles(lag), "wer": float(np.mean(wers)),
               "dropped_seconds": dropped, "lagging_events": lagging,
               "utterances": len(lines)}
        rows.append(row)
        fp, fl = row["first_partial"], row["final_lag"]
        print(f"| {count} | {fp[0]:.2f} / {fp[1]:.2f} | {fl[0]:.2f} / {fl[1]:.2f} | "
              f"{row['wer']:.1f} ({batch_wer:.1f}) | {dropped:.2f} | {lagging} |", flush=True)
    capacity = max((r["streams"] for r in rows if r["final_lag"][1] <= 3.0), default=0)
    print(f"\nconcurrent real-time streams with final-lag p95 <= 3 s: {capacity}")
    report["streams"] = rows
    report["capacity"] = capacity
    if args.json:
        args.json.write_text(json.dumps(report, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
