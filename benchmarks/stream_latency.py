"""Live latency and capacity of `medstream serve` on this machine, on the audio clock.

Part 1 (in one process, no server): the recogniser's cost per second of streamed audio when
partials are decoded on the audio alone (what the server does) against Whisper's padded 30 s
window (the obvious alternative), on the same stream; prints the ratio and both WERs.

Part 2: a server on loopback and N clients streaming the same recording at real-time pace
(starts staggered by 0.37 s). For each N: first-partial latency (first partial with a word,
from the utterance's onset) and final lag (final received, minus the utterance's end), p50 and
p95 over all utterances of all clients; WER of each client's finals against the reference; audio
the server says it received against audio sent (dropped = 0 is required). The largest N whose
final-lag p95 stays under 3 s is the machine's capacity. The JSON has every final of every
client (start, end, received, lag, text), not only the percentiles.

Long turns: a whole OSCE interview (``--audio ../shared/data/speech/fareez_osce_en/audio/
CAR0001.mp3 --reference`` its transcript), or the synthetic long-turn conversation of
``benchmarks/long_turns.py`` with ``--sentences`` its ``sentences.jsonl``: then each spoken
sentence's lag is measured too, from its exact end to the first final that reaches it.
``--languages en,es`` streams in interpreter mode (each turn's language identified among
them; needs a multilingual model), and the batch WER it is compared with is then
``transcribe --languages``' (each stretch of speech in its own language); ``--model
path.nemo`` serves a NeMo cache-aware model (part 1, Whisper's alone, is skipped).
``--no-cost`` skips part 1 (it decodes the whole recording twice).

    python benchmarks/stream_latency.py [--model tiny.en] [--audio FILE --reference TXT]
        [--sentences JSONL] [--streams 1,2,4,6] [--languages en,es] [--no-cost]
        [--device cpu|cuda] [--max-batch N] [--json OUT]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import time
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np

import streaming.live.engine
from eval.latency import (
    Emission,
    FinalLag,
    FirstPartialLatency,
    UtteranceTimeline,
    sentence_lags,
)
from eval.wer import error_rate
from speech.audio import load_audio
from speech.backends.faster_whisper import resolve_device
from speech.loader import load_asr
from speech.online import (
    DecodeJob,
    OnlineTranscriber,
    StreamOptions,
    WindowResult,
    decode_jobs,
    parse_stream_options,
    replay,
)
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
        spent = 0.0

        def decode(job: DecodeJob) -> WindowResult:
            nonlocal spent
            began = time.perf_counter()
            result = decode_jobs(asr, [job])[0]
            spent += time.perf_counter() - began
            return result

        stream = OnlineTranscriber(StreamOptions(language="en"))
        finals = [u.segment.text for u in replay(stream, audio, decode) if u.segment.is_final]
        return spent, " ".join(finals)
    finally:
        speech.online.PARTIAL_CONTEXT = saved


def session_options(text: str) -> None:
    """Every session the engine opens from now on gets these StreamOptions (those its start
    message does not set), e.g. to measure another finalisation policy over the websocket."""
    chosen, default = parse_stream_options(text), StreamOptions()
    overrides = {f.name: getattr(chosen, f.name) for f in fields(StreamOptions)
                 if getattr(chosen, f.name) != getattr(default, f.name)}
    setattr(streaming.live.engine, StreamOptions.__name__,
            functools.partial(StreamOptions, **overrides))


def costs(asr: Any, audio: np.ndarray, reference: str) -> dict[str, float]:
    """Part 1: decode cost per audio second, short-context against padded partials."""
    short_cost, short_text = decode_cost(asr, audio, short=True)
    full_cost, full_text = decode_cost(asr, audio, short=False)
    seconds = len(audio) / 16000
    return {"short_partials_s_per_audio_s": short_cost / seconds,
            "padded_partials_s_per_audio_s": full_cost / seconds,
            "ratio": full_cost / short_cost,
            "wer_short": error_rate([reference], [short_text]).score,
            "wer_padded": error_rate([reference], [full_text]).score}


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


def final_records(result: StreamResult) -> list[dict[str, Any]]:
    """Every final of one client: its times, when it was received, its lag and text."""
    return [{"utterance": f["utterance"], "start": round(f["start"], 3),
             "end": round(f["end"], 3), "received": round(f["received"], 3),
             "lag": round(f["received"] - max(f["end"], f["start"]), 3), "text": f["text"]}
            for f in result.of_type("final")]


async def run_clients(url: str, audio: np.ndarray, count: int, start: dict[str, Any]
                      ) -> list[StreamResult]:
    timeout = len(audio) / 16000 * 1.5 + 300

    async def one(index: int) -> StreamResult:
        await asyncio.sleep(0.37 * index)
        return await stream_audio(url, audio, start, timeout=timeout)

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
    parser.add_argument("--sentences", type=Path,
                        help="sentences.jsonl of benchmarks/long_turns.py (exact times)")
    parser.add_argument("--languages", default="",
                        help="interpreter mode: the two languages, e.g. en,es")
    parser.add_argument("--no-cost", action="store_true", help="skip part 1")
    parser.add_argument("--options", default="",
                        help="StreamOptions of every session, key=value,... (e.g. the policy "
                             "before issue 23: trim_after=10,sentence_decode=0,sentence_gap=0,"
                             "min_sentence=0)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    if args.options:
        session_options(args.options)
    device = resolve_device(args.device)
    asr = load_asr(args.model, ModelOptions(device="cuda" if device == "cuda" else "cpu"))
    gpu = device == "cuda"
    config = EngineConfig(max_batch=args.max_batch or (16 if gpu else 4), batch_finals=gpu)
    audio = load_audio(args.audio)
    reference = args.reference.read_text(encoding="utf-8")
    seconds = len(audio) / 16000
    languages = [x for x in args.languages.split(",") if x]
    start: dict[str, Any] = {"entities": False, **(
        {"languages": languages} if languages else {"language": "en"})}
    sentences = [json.loads(line) for line in args.sentences.read_text(
        encoding="utf-8").splitlines()] if args.sentences else []
    # Batch decodes an interpreted conversation stretch by stretch in its languages, as
    # `transcribe --languages` does (in one language it translates the other party).
    segments, _ = asr.transcribe(audio, TranscribeOptions(languages=tuple(languages))
                                 if languages else TranscribeOptions(language="en"))
    batch_wer = error_rate([reference], [" ".join(s.text for s in segments)]).score
    report: dict[str, Any] = {"model": asr.identifier, "audio": str(args.audio),
                              "audio_seconds": seconds, "batch_wer": batch_wer}

    print(f"{asr.identifier}, {seconds:.1f} s of audio, batch WER {batch_wer:.1f}")
    if not args.no_cost and hasattr(asr, "transcribe_windows"):  # Whisper (not NeMo)
        report["decode_cost"] = cost = costs(asr, audio, reference)
        print(f"decode cost per audio second: short-context partials "
              f"{cost['short_partials_s_per_audio_s']:.3f} s, padded partials "
              f"{cost['padded_partials_s_per_audio_s']:.3f} s -> {cost['ratio']:.2f}x less "
              f"work (finals WER {cost['wer_short']:.1f} vs {cost['wer_padded']:.1f})")

    rows = []
    print("\n| streams | first partial p50 / p95 (s) | final lag p50 / p95 (s) | WER mean "
          "(batch) | audio dropped (s) | lagging events |")
    print("|---|---|---|---|---|---|")
    for count in [int(x) for x in args.streams.split(",")]:
        engine = Engine(asr, config=config, name=asr.identifier)
        with serve_in_thread(engine, asr) as base:
            results = asyncio.run(run_clients(base.replace("http", "ws") + "/v1/stream", audio,
                                              count, start))
            totals = engine.metrics()
        lines = [t for r in results for t in timelines(r)]
        first = [s for s in FirstPartialLatency().sentence_scores(lines) if s is not None]
        lag = [s for s in FinalLag().sentence_scores(lines) if s is not None]
        wers = [error_rate([reference], [r.text]).score for r in results]
        received = [r.of_type("end")[0]["audio_seconds"] if r.of_type("end") else 0.0
                    for r in results]
        dropped = sum(max(0.0, seconds - got) for got in received)
        lagging = sum(1 for r in results for e in r.of_type("status")
                      if e["state"] == "lagging")
        finals = [final_records(r) for r in results]
        row: dict[str, Any] = {"streams": count, "first_partial": percentiles(first),
               "final_lag": percentiles(lag), "wer": float(np.mean(wers)),
               "dropped_seconds": dropped, "lagging_events": lagging,
               "utterances": len(lines), "finals": finals,
               "decodes": totals["decodes"], "hurried_decodes": totals["hurried_decodes"]}
        if sentences:
            ends = [x["end"] for x in sentences]
            per = [sentence_lags([(x["end"], x["received"]) for x in f], ends) for f in finals]
            found = [x for lags in per for x in lags if x is not None]
            row["sentence_lag"] = percentiles(found)
            row["sentences_without_final"] = sum(x is None for lags in per for x in lags)
            row["sentence_lags"] = per
        rows.append(row)
        fp, fl = row["first_partial"], row["final_lag"]
        extra = ""
        if sentences:
            sl = row["sentence_lag"]
            extra = f" sentence lag p50 / p95 {sl[0]:.2f} / {sl[1]:.2f} s |"
        print(f"| {count} | {fp[0]:.2f} / {fp[1]:.2f} | {fl[0]:.2f} / {fl[1]:.2f} | "
              f"{row['wer']:.1f} ({batch_wer:.1f}) | {dropped:.2f} | {lagging} |{extra} "
              f"hurried {totals['hurried_decodes']:.0f} of {totals['decodes']:.0f} decodes |",
              flush=True)
    capacity = max((r["streams"] for r in rows if r["final_lag"][1] <= 3.0), default=0)
    print(f"\nconcurrent real-time streams with final-lag p95 <= 3 s: {capacity}")
    report["streams"] = rows
    report["capacity"] = capacity
    if args.json:
        args.json.write_text(json.dumps(report, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
