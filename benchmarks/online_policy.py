"""Final lag against WER of the live finalisation policy, setting by setting, in one process.

One stream of a recording goes through :class:`speech.online.OnlineTranscriber` as the server
would run it for a single client fed in real time, on a simulated clock: audio arrives at its
own pace (100 ms pieces), every decode takes the wall time it really takes on this machine
(finals first, ``hurry`` as the engine decides it), and each final is stamped with the clock
when its decode ended. A final's lag is that time minus its end on the audio clock, as
``benchmarks/stream_latency.py`` measures it over a websocket. Since each setting's decodes are
timed on the machine as it is, compare settings of one run side by side (a loaded machine
moves them all), or give each decode a modelled cost (``--clock model``: measured once per
kind of decode and window length, so that a run is reproducible; with ``--costs FILE`` kept
across processes too); the real-time figures come
from ``stream_latency.py``. The temperature fallback's sampling is seeded by each window, so
the same window decodes to the same text in every setting.

Settings are given as ``name:key=value,key=value`` (StreamOptions fields, e.g.
``trim_after=10,sentence_decode=0,prompt_chars=0``); per setting it prints final lag p50 / p95
/ max, with ``--sentences`` (a conversation of ``long_turns.py``) the lag of each spoken
sentence from its exact end (:func:`eval.latency.sentence_lags`), the WER of the finals, how
much of the slowest tenth of the finals' lag was their own decode (the rest: finding where the
sentence ends, and waiting for the decode before), and the number and time of partial, thorough
partial (``final_at_pause``) and final decodes; ``--json`` writes per-final and per-sentence
lags. ``--errors`` also prints where each setting's errors are: the substitutions, deletions
and insertions of its finals against batch's, and by kind of final (one that ends an
utterance, or a sentence cut inside a turn: the next final begins where it ends) and length,
each edit charged to the final that holds it (:meth:`eval.wer.ErrorRate.charged`).
``--languages en,es`` runs each setting in interpreter mode (with a multilingual ``--model``)
and counts the decodes on a final's path that had to identify the language (an
encoder pass more).

    python benchmarks/online_policy.py --audio A (--reference R | --sentences S [--seconds N])
        [--clock wall|cpu|model [--costs FILE]] [--languages en,es --model base] [--errors]
        [--json OUT]
        SETTING...
"""

from __future__ import annotations

import argparse
import json
import time
import zlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import ctranslate2
import numpy as np

from eval.latency import sentence_lags
from eval.metric import Score
from eval.wer import Alignment, ErrorRate, error_rate
from speech.audio import SAMPLE_RATE, load_audio
from speech.loader import load_asr
from speech.online import (
    DecodeJob,
    OnlineTranscriber,
    StreamOptions,
    decode_jobs,
    parse_stream_options,
)
from speech.options import ModelOptions, TranscribeOptions

STEP = 1600
"""Samples per piece of audio fed (100 ms, what the web page sends)."""
HURRY_BACKLOG = 2.0
"""The engine's ``EngineConfig.hurry_backlog``."""


@dataclass(frozen=True)
class TimedFinal:
    start: float
    end: float
    sent: float
    """Simulated clock when its decode ended."""
    text: str
    decode: float = 0.0
    """Seconds its own decode took (the rest of its lag: finding its end, and waiting)."""

    @property
    def lag(self) -> float:
        return self.sent - self.end


class DecodeCost:
    """The wall time of a decode as a function of its window's length, measured once per kind
    of decode on this machine: for each of ``LENGTHS``, the mean time of windows of that
    length taken at ``PLACES`` spread over the recording (so that the temperature fallback
    counts as often as the speech calls for it), and a job costs the interpolation at its
    length. A simulation on this clock is reproducible within one process: two settings differ
    only by what they decide, not by what else the machine was doing while one of them ran."""

    LENGTHS = (2.0, 5.0, 10.0, 15.0, 20.0, 28.0)
    PLACES = (0.2, 0.5, 0.8)

    def __init__(self, asr: Any, audio: np.ndarray, path: Path | None = None,
                 label: str = "") -> None:
        """With ``path``, the table is read from that JSON file where it exists (it must have
        been measured for the same ``label``: recording and model) and written to it after
        each new measurement, so that runs in other processes (another stop, a setting tried
        later) decode on the same clock and compare with this one's."""
        self.asr, self.audio, self.path, self.label = asr, audio, path, label
        self.table: dict[str, list[float]] = {}
        if path is not None and path.exists():
            saved = json.loads(path.read_text(encoding="utf-8"))
            if saved["label"] != label:
                raise SystemExit(f"{path} holds the decode costs of {saved['label']}, "
                                 f"not of {label}")
            self.table = saved["table"]

    def __call__(self, job: DecodeJob, hurry: bool) -> float:
        if job.decided is not None:
            return 0.0  # a kept early final: nothing to decode
        options = job.stream.options
        key = repr((job.options, job.kind, job.thorough, options.final_fallback,
                    options.final_window, hurry))
        if key not in self.table:
            self.table[key] = [self._time(job, seconds, hurry) for seconds in self.LENGTHS]
            if self.path is not None:
                self.path.write_text(json.dumps({"label": self.label, "table": self.table},
                                                indent=1), encoding="utf-8")
        return float(np.interp(len(job.audio) / SAMPLE_RATE, self.LENGTHS, self.table[key]))

    def _time(self, job: DecodeJob, seconds: float, hurry: bool) -> float:
        length = round(seconds * SAMPLE_RATE)
        times = []
        for place in self.PLACES:
            begin = max(0, round((len(self.audio) - length) * place))
            probe = replace(job, audio=self.audio[begin: begin + length], context=0)
            began = time.perf_counter()
            decode_jobs(self.asr, [probe], hurry=hurry)
            times.append(time.perf_counter() - began)
        return float(np.mean(times))


def seed(job: DecodeJob) -> None:
    """Seed the sampling of the temperature fallback by the job's audio: two settings that
    decode the same window get the same text, so they differ only by what they decide."""
    ctranslate2.set_random_seed(zlib.crc32(job.audio.tobytes()))


def simulate(asr: Any, audio: np.ndarray, options: StreamOptions, clock_kind: str = "wall",
             cost: DecodeCost | None = None
             ) -> tuple[list[TimedFinal], dict[str, list[float]]]:
    """The finals of one real-time stream of ``audio``, and the time of each decode by kind
    ("partial", "thorough": a partial decoded as a final, "final").

    ``clock_kind`` "wall": a decode takes the wall time it took; "cpu": the CPU time the
    process spent on it (every thread's), which a loaded machine inflates far less than wall
    time, and which is an upper bound of the wall time of a quiet machine; "model": what
    ``cost`` says it takes (:class:`DecodeCost`)."""
    timer = time.process_time if clock_kind == "cpu" else time.perf_counter
    if clock_kind == "model" and cost is None:
        cost = DecodeCost(asr, audio)
    stream = OnlineTranscriber(options)
    clock, fed = 0.0, 0
    spent: dict[str, list[float]] = {"partial": [], "thorough": [], "final": [],
                                     "identified in a final": []}
    finals: list[TimedFinal] = []
    while not stream.done:
        while fed < len(audio) and (fed + STEP) / SAMPLE_RATE <= clock + 1e-9:
            stream.accept(audio[fed:fed + STEP])
            fed += STEP
        if fed >= len(audio) and not stream.finished:
            stream.finish()
        job = stream.next_job()
        if job is None:
            clock = max(clock, (fed + STEP) / SAMPLE_RATE)
            continue
        hurry = stream.pending_final and stream.backlog > HURRY_BACKLOG
        seed(job)
        began = timer()
        result = decode_jobs(asr, [job], hurry=hurry)[0]
        took = cost(job, hurry) if clock_kind == "model" and cost else timer() - began
        clock += took
        if job.decided is None:  # a kept early final costs nothing
            spent["thorough" if job.thorough else job.kind].append(took)
        if job.as_final and job.options.language is None and job.decided is None:
            spent["identified in a final"].append(took)
        for update in stream.complete(job, result):
            if update.segment.is_final:
                segment = update.segment
                finals.append(TimedFinal(segment.start, segment.end, clock, segment.text,
                                         took if job.as_final else 0.0))
    return finals, spent


def errors_by_kind(finals: list[TimedFinal], reference: str) -> dict[str, Alignment]:
    """The edits of ``finals`` against ``reference``, summed by kind of final ("end": it ends
    an utterance; "cut": the next final begins where it ends) and length in seconds."""
    charged = ErrorRate("en").charged([f.text for f in finals], reference)
    sums: dict[str, list[int]] = {}
    for index, (final, counts) in enumerate(zip(finals, charged, strict=True)):
        cut = index + 1 < len(finals) and abs(finals[index + 1].start - final.end) < 0.011
        length = final.end - final.start
        key = f"{'cut' if cut else 'end'} {'<2' if length < 2 else '2-5' if length < 5 else '5+'} s"
        total = sums.setdefault(key, [0, 0, 0, 0])
        for place, value in enumerate((counts.hits, counts.substitutions, counts.deletions,
                                       counts.insertions)):
            total[place] += value
    return {key: Alignment(*sums[key]) for key in sorted(sums)}


def _edits(wer: Score) -> str:
    """The substitutions, deletions and insertions behind a WER."""
    edits = wer.details
    return f"S {edits['substitutions']} / D {edits['deletions']} / I {edits['insertions']}"


def parse_setting(text: str, languages: tuple[str, ...] = ()) -> tuple[str, StreamOptions]:
    """``name:key=value,...`` as a name and StreamOptions (language en; with ``languages``,
    interpreter mode: the language of each turn identified among them)."""
    name, _, body = text.partition(":")
    if languages:
        return name, parse_stream_options(body, language=None, languages=languages)
    return name, parse_stream_options(body, language="en")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--audio", type=Path, required=True)
    parser.add_argument("--reference", type=Path,
                        help="the words spoken (all of them: give --seconds 0)")
    parser.add_argument("--sentences", type=Path,
                        help="instead of --reference: sentences.jsonl of long_turns.py, whose "
                             "sentences that end within --seconds are the reference")
    parser.add_argument("--seconds", type=float, default=0.0,
                        help="stream only the first seconds (0: all)")
    parser.add_argument("--model", default="tiny.en")
    parser.add_argument("--clock", choices=["wall", "cpu", "model"], default="wall",
                        help="what a decode costs on the simulated clock (see simulate)")
    parser.add_argument("--costs", type=Path,
                        help="with --clock model: read the decode costs from this JSON file, "
                             "or measure and write them there (see DecodeCost)")
    parser.add_argument("--languages", default="",
                        help="interpreter mode: the languages of the conversation, e.g. en,es "
                             "(needs a multilingual model)")
    parser.add_argument("--errors", action="store_true",
                        help="also print where the finals' errors are (see above)")
    parser.add_argument("--json", type=Path)
    parser.add_argument("settings", nargs="+")
    args = parser.parse_args()
    asr = load_asr(args.model, ModelOptions(device="cpu"))
    audio = load_audio(args.audio)
    if args.seconds:
        audio = audio[: round(args.seconds * SAMPLE_RATE)]
    ends: list[float] = []
    if args.sentences:
        timed = [json.loads(line) for line in
                 args.sentences.read_text(encoding="utf-8").splitlines()]
        ends = [t["end"] for t in timed if not args.seconds or t["end"] <= args.seconds]
        reference = " ".join(t["text"] for t in timed
                             if not args.seconds or t["end"] <= args.seconds)
        if args.seconds:  # end the audio in the gap after the last whole sentence
            last = max(t["end"] for t in timed if t["end"] <= args.seconds)
            audio = audio[: round((last + 0.15) * SAMPLE_RATE)]
    elif args.reference and not args.seconds:
        reference = args.reference.read_text(encoding="utf-8")
    else:
        raise SystemExit("give --reference (whole recording) or --sentences")
    segments, _ = asr.transcribe(audio, TranscribeOptions(language="en"))
    batch_wer = error_rate([reference], [" ".join(s.text for s in segments)])
    batch = batch_wer.score
    print(f"{args.audio.name}, {len(audio) / SAMPLE_RATE:.0f} s, batch WER {batch:.1f}")
    if args.errors:
        print(f"batch: {_edits(batch_wer)}")
    print("| setting | final lag p50 / p95 / max (s) | sentence lag p50 / p95 / max (s) | "
          "WER of finals | finals | own decode of the slowest 10 % finals (s) | partials, "
          "thorough partials, finals: decodes / busy (s) |")
    print("|---|---|---|---|---|---|---|")
    report: dict[str, Any] = {"audio": str(args.audio), "seconds": len(audio) / SAMPLE_RATE,
                              "clock": args.clock,
                              "batch_wer": batch, "settings": {}}
    label = f"{args.audio.name}, {len(audio)} samples, {args.model}"
    cost = DecodeCost(asr, audio, args.costs, label) if args.clock == "model" else None
    languages = tuple(x for x in args.languages.split(",") if x)
    for setting in args.settings:
        name, options = parse_setting(setting, languages)
        finals, spent = simulate(asr, audio, options, args.clock, cost)
        lags = [f.lag for f in finals]
        slowest = sorted(finals, key=lambda f: f.lag)[-max(1, len(finals) // 10):]
        own = float(np.mean([f.decode for f in slowest])) if finals else float("nan")
        tail = float(np.mean([f.lag for f in slowest])) if finals else float("nan")
        busy = ", ".join(f"{len(spent[k])} / {sum(spent[k]):.0f}" for k in spent
                         if k != "identified in a final")
        if languages:
            busy += f"; {len(spent['identified in a final'])} identified a language"
        finals_wer = error_rate([reference], [" ".join(f.text for f in finals)])
        wer = finals_wer.score
        p50, p95 = np.percentile(lags, [50, 95]) if lags else (float("nan"),) * 2
        per = sentence_lags([(f.end, f.sent) for f in finals], ends)
        reached = [x for x in per if x is not None]
        s50, s95 = np.percentile(reached, [50, 95]) if reached else (float("nan"),) * 2
        print(f"| {name} | {p50:.2f} / {p95:.2f} / {max(lags, default=0):.2f} | {s50:.2f} / "
              f"{s95:.2f} / {max(reached, default=0):.2f} | {wer:.1f} | {len(finals)} | "
              f"{own:.2f} of {tail:.2f} lag | {busy} |", flush=True)
        report["settings"][name] = {
            "options": setting, "wer": wer, "lag_p50": float(p50), "lag_p95": float(p95),
            "decode_seconds": spent, "sentence_lags": per,
            "finals": [{"start": round(f.start, 2), "end": round(f.end, 2),
                        "lag": round(f.lag, 3), "decode": round(f.decode, 3), "text": f.text}
                       for f in finals]}
        if args.errors:
            kinds = errors_by_kind(finals, reference)
            print(f"  {name} finals: {_edits(finals_wer)}; errors / words, by final: " + "; ".join(
                f"{key} {c.errors} / {c.hits + c.substitutions + c.insertions}"
                for key, c in kinds.items()), flush=True)
            report["settings"][name]["errors"] = {
                "all": {k: finals_wer.details[k] for k in ("hits", "substitutions", "deletions",
                                                            "insertions")},
                **{key: vars(c) for key, c in kinds.items()}}
        if args.json:  # after each setting: a long run can be read while it goes on
            args.json.write_text(json.dumps(report, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
