"""How much of a turn interpreter mode must hear before it can trust its language.

In interpreter mode (``StreamOptions.languages``, e.g. en and pt) a turn's language is
identified once, by the first partial that has heard ``speech.online.IDENTIFY_AFTER`` seconds
of it; the turn's finals are decoded in that language. A wrong early guess is costly: Whisper,
told that Portuguese speech is English, translates it, and the pipeline then "translates" that
English back. This script measures, on real read speech (FLEURS, via
``../shared/data/speech/fleurs_cuttledoc``), how often identification among the two candidates
picks the wrong one after hearing N seconds from where the live VAD hears the turn begin (its
onset, padding included, which is where a live utterance's buffer begins), and how sure it was
when wrong (the candidate's share of the two candidates' probability).

Each non-English recording is a turn of an en<->X pair; each English one is a turn of en<->X
for every X. The files are split by number: 000-004 is the choose set, 005-009 the report set
(``--files``).

With ``--conversation X`` it streams a conversation instead, as the server would (without a
clock: :func:`speech.online.replay`): the split's English and X recordings alternating (en 000,
X 000, en 001, ...), 1.5 s apart, in interpreter mode (en, X), and counts the finals given the
wrong language (by where they lie), with their seconds, and the partials (which the web page
shows in the column of their language): what a user sees.

    python benchmarks/language_id.py [--model base] [--files choose|report|all]
        [--conversation X [--audio-out WAV] [--batch [--batch-size N]]]
        [--english-discount D] [--first-guess S] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from eval.readers import ManifestEntry, read_manifest
from eval.wer import error_rate
from speech import load_asr
from speech.audio import SAMPLE_RATE, load_audio
from speech.identify import pick_language
from speech.online import (
    IDENTIFY_AFTER,
    OnlineTranscriber,
    StreamOptions,
    decode_jobs,
    replay,
)
from speech.options import TranscribeOptions
from speech.vad import StreamingVAD

FLEURS = Path(__file__).resolve().parents[1].parent / "shared/data/speech/fleurs_cuttledoc"
HEARD = (0.5, 0.75, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 6.0)
SPLITS = {"choose": range(0, 5), "report": range(5, 10), "all": range(0, 10)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="base")
    parser.add_argument("--files", choices=sorted(SPLITS), default="all")
    parser.add_argument("--conversation", metavar="X",
                        help="stream an en<->X conversation and count finals in the wrong language")
    parser.add_argument("--json", type=Path, help="write each turn's probabilities (or final) here")
    parser.add_argument("--english-discount", type=float, default=StreamOptions.english_discount,
                        help="divide English's probability by this (StreamOptions."
                             "english_discount; 1: the model's own pick)")
    parser.add_argument("--audio-out", type=Path, metavar="WAV",
                        help="with --conversation: also write its audio here and its "
                             "transcript beside it (.txt), for stream_latency.py")
    parser.add_argument("--batch", action="store_true",
                        help="with --conversation: transcribe it in batch instead, the whole "
                             "in the language of its first 30 s against each stretch in its own "
                             "(TranscribeOptions.languages)")
    parser.add_argument("--batch-size", type=int, default=1, help="with --batch")
    parser.add_argument("--first-guess", type=float, default=StreamOptions.first_guess,
                        help="seconds of a turn before its first partial (StreamOptions."
                             "first_guess), with --conversation")
    args = parser.parse_args()
    asr = load_asr(args.model)
    rows = split_rows(args.files)
    if args.conversation and args.batch:
        batch(asr, build_conversation(rows, args.conversation), args.conversation,
              args.batch_size)
        return
    if args.conversation:
        conversation(asr, rows, args.conversation, args.json,
                     StreamOptions(languages=("en", args.conversation),
                                   english_discount=args.english_discount,
                                   first_guess=args.first_guess), args.audio_out)
        return
    others = sorted({str(r.lang) for r in rows} - {"en"})
    turns: list[dict[str, Any]] = []
    spent, calls = 0.0, 0
    for row in rows:
        audio = load_audio(row.audio_filepath)
        onsets = [e.sample for e in StreamingVAD().feed(audio) if e.kind == "onset"]
        turn = audio[onsets[0] if onsets else 0:]
        heard: dict[str, dict[str, float]] = {}
        for seconds in (*HEARD, None):
            began = time.perf_counter()
            window = turn if seconds is None else turn[:round(seconds * SAMPLE_RATE)]
            heard[str(seconds or "all")] = dict(asr.detect_language(window, vad_filter=False))
            spent, calls = spent + time.perf_counter() - began, calls + 1
        pairs = [("en", str(row.lang))] if row.lang != "en" else [("en", x) for x in others]
        for pair in pairs:
            turns.append({"file": row.audio_filepath.name, "language": row.lang,
                          "pair": pair, "probabilities": heard})
    print(f"{len(turns)} turns ({len(rows)} recordings, {args.files}), {args.model}; "
          f"identification {spent / calls:.2f} s per call")
    print(f"{'heard':>6} {'model':>7} {'wrong':>7}  wrong turns with English's probability "
          f"divided by {args.english_discount:g} (the share of the one picked)")
    for seconds in (*HEARD, None):
        key = str(seconds or "all")
        raw = [t for t in turns if _guess(t["probabilities"][key], t["pair"], 1.0)[0]
               != t["language"]]
        wrong = [(t["file"], share) for t in turns
                 for guess, share in [_guess(t["probabilities"][key], t["pair"],
                                             args.english_discount)]
                 if guess != t["language"]]
        marked = " <- IDENTIFY_AFTER" if seconds == IDENTIFY_AFTER else ""
        listed = ", ".join(f"{name} ({share:.2f})" for name, share in wrong)
        print(f"{key:>6} {len(raw):>3}/{len(turns):<3} {len(wrong):>3}/{len(turns):<3} "
              f"{listed}{marked}")
    if args.json:
        args.json.write_text(json.dumps(turns, indent=1))


@dataclass(frozen=True)
class Conversation:
    """FLEURS recordings in two languages alternating, 1.5 s apart."""

    audio: np.ndarray
    spans: list[tuple[float, float, str]]
    """Each turn's start and end (seconds) and language."""
    said: list[str]
    """Each turn's transcript."""

    def spoken(self, start: float, end: float) -> str:
        """The language of the turn nearest the middle of ``start``-``end``."""
        middle = (start + end) / 2
        return min(self.spans, key=lambda s: max(s[0] - middle, middle - s[1], 0.0))[2]


def build_conversation(rows: list[ManifestEntry], other: str) -> Conversation:
    """The split's English and ``other`` recordings alternating (en 000, X 000, en 001, ...)."""
    gap = np.zeros(round(1.5 * SAMPLE_RATE), np.float32)
    pieces: list[np.ndarray] = []
    spans: list[tuple[float, float, str]] = []
    said: list[str] = []
    by_language = {lang: [r for r in rows if r.lang == lang] for lang in ("en", other)}
    clock = 0.0
    for pair in zip(by_language["en"], by_language[other], strict=False):
        for row in pair:
            audio = load_audio(row.audio_filepath)
            spans.append((clock, clock + len(audio) / SAMPLE_RATE, str(row.lang)))
            pieces += [audio, gap]
            clock += (len(audio) + len(gap)) / SAMPLE_RATE
            said.append(row.text)
    return Conversation(np.concatenate(pieces), spans, said)


def split_rows(files: str) -> list[ManifestEntry]:
    """The FLEURS recordings of a split (``SPLITS``)."""
    numbers = SPLITS[files]
    return [entry for entry in read_manifest(FLEURS / "manifest.jsonl")
            if int(entry.audio_filepath.stem.rsplit("-", 1)[1]) in numbers]


def batch(asr: Any, talk: Conversation, other: str, batch_size: int) -> None:
    """Transcribe ``talk`` in batch, in one language (``--language auto``) and then stretch by
    stretch (``--languages en,other``); print the WER, the seconds of segments given the
    wrong language, the time each took and the ratio of the times (identifying each speech
    run costs an encoder pass)."""
    said = " ".join(talk.said)
    print(f"en<->{other}, {len(talk.spans)} turns ({len(talk.audio) / SAMPLE_RATE:.0f} s), "
          f"batch size {batch_size}")
    print("| languages | WER | wrong-language segments (s) | seconds |\n|---|---|---|---|")
    spent: dict[tuple[str, ...], float] = {}
    for languages in ((), ("en", other)):
        began = time.perf_counter()
        found, info = asr.transcribe(talk.audio, TranscribeOptions(languages=languages,
                                                                   batch_size=batch_size))
        segments = list(found)
        spent[languages] = time.perf_counter() - began
        wrong = sum(s.end - s.start for s in segments
                    if s.language != talk.spoken(s.start, s.end))
        total = sum(s.end - s.start for s in segments)
        wer = error_rate([said], [" ".join(s.text for s in segments)]).score
        name = ",".join(languages) or f"auto ({info.language})"
        print(f"| {name} | {wer:.1f} | {wrong:.1f} of {total:.1f} | {spent[languages]:.1f} |")
    print(f"time, --languages against auto: {spent[('en', other)] / spent[()]:.2f}x")


def conversation(asr: Any, rows: list[ManifestEntry], other: str, out: Path | None,
                 options: StreamOptions, audio_out: Path | None = None) -> None:
    """Stream en and ``other`` recordings of ``rows`` alternating; print the wrong finals."""
    built = build_conversation(rows, other)
    spans, clock = built.spans, len(built.audio) / SAMPLE_RATE
    if audio_out:
        sf.write(audio_out, built.audio, SAMPLE_RATE)
        audio_out.with_suffix(".txt").write_text(" ".join(built.said) + "\n")
    stream = OnlineTranscriber(options)
    finals: list[dict[str, Any]] = []
    partials = [0, 0]  # in the wrong language, in all
    for update in replay(stream, built.audio, lambda job: decode_jobs(asr, [job])[0]):
        segment = update.segment
        if not segment.text:
            continue
        truth = built.spoken(segment.start, segment.end)
        if segment.is_final:
            finals.append({"start": segment.start, "end": segment.end, "text": segment.text,
                           "language": segment.language, "spoken": truth})
        else:
            partials = [partials[0] + (segment.language != truth), partials[1] + 1]
    wrong = [f for f in finals if f["language"] != f["spoken"]]
    print(f"en<->{other}, {len(spans)} turns ({clock:.0f} s): {len(wrong)} of {len(finals)} "
          f"finals in the wrong language, {sum(f['end'] - f['start'] for f in wrong):.1f} s "
          f"of {sum(f['end'] - f['start'] for f in finals):.1f} s "
          f"(IDENTIFY_AFTER {IDENTIFY_AFTER} s); {partials[0]} of {partials[1]} partials")
    for final in wrong:
        print(f"  {final['start']:7.2f}-{final['end']:7.2f} {final['spoken']} heard as "
              f"{final['language']}: {final['text']}")
    if out:
        out.write_text(json.dumps(finals, indent=1))


def _guess(probabilities: dict[str, float], pair: tuple[str, str],
           english_discount: float) -> tuple[str, float]:
    """The candidate identification picks, and its share of the candidates' probability."""
    guess = pick_language(list(probabilities.items()), pair, english_discount)
    total = sum(probabilities.get(language, 0.0) for language in pair) or 1.0
    return guess, probabilities.get(guess, 0.0) / total


if __name__ == "__main__":
    main()
