"""How right the packaged diarizer is, and what it costs, on the shared speech data.

- ``speech/synth_dialogue_en`` (four MTS-Dialog conversations spoken by two espeak-ng voices,
  exact RTTM; espeak-ng 1.51 speaks both as one male voice, see the README), and the same four
  spoken again by two voices that differ (``--revoiced``, :func:`revoiced`): DER and JER
  with :class:`eval.diarization.DiarizationError` (pyannote.metrics;
  0.25 s not scored on each side of every reference boundary, i.e. pyannote ``collar=0.5``;
  overlap scored) with the count found and with ``speakers=2``.
- ``speech/fareez_osce_en`` (four recorded OSCE interviews, mp3, no timings): the speakers
  found and each one's share of the talk time, found and with ``speakers=2`` (the first
  ``--osce-seconds`` of each, all of it by default); with ``--osce-words`` (a finished batch of
  the interviews), WER and cpWER with 2 speakers, from its words without recognising again; with
  ``--merges``, the count found and cpWER at each merge similarity, one chosen on
  ``--osce-choose`` and reported on the others.
- Wall time of :meth:`Diarizer.diarize` per second of audio on this machine.
- :class:`speech.speakers.OnlineSpeakers` on the synthetic dialogues, utterance by utterance as
  the live VAD cuts them (:class:`speech.vad.StreamingVAD`): the share of utterances whose
  speaker is the reference one (online speakers mapped one-to-one to the reference's for the
  most agreement). The threshold is chosen on ``--choose`` recordings and reported on the rest.

    python benchmarks/diarization_quality.py [--json OUT] [--only synthetic,online,osce]
        [--revoiced] [--osce-seconds S] [--osce-words DIR] [--merges 0.8,0.85,0.9]
        [--osce-choose A,B]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
from scipy.optimize import linear_sum_assignment  # type: ignore[import-untyped]

from eval.conversations import (
    Conversation,
    TextTurn,
    TimedTurn,
    read_role_transcript,
    read_rttm,
    write_rttm,
)
from eval.diarization import AttributedWER, DiarizationError
from speech.audio import SAMPLE_RATE, load_audio
from speech.diarization import Diarizer, LocalSpeech, SpeakerTurn, load_diarizer
from speech.speakers import OnlineSpeakers, assign_speakers
from speech.synthetic import EspeakMissingError, speak, trim_silence
from speech.types import Segment
from speech.vad import StreamingVAD
from streaming.document import TranscriptDocument

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "speech"
SYNTH = DATA / "synth_dialogue_en"
REVOICED = REPO / ".cache" / "synth_dialogue_voices"
VOICES_APART = {"doctor": "en-us+m3", "patient": "en+f3"}
"""The voices of :func:`revoiced`: the shared set's doctor, and a female variant that
espeak-ng 1.51 does apply (it ignores the shared set's ``+f2`` after ``en-gb``)."""
OSCE = DATA / "fareez_osce_en"
COLLAR = 0.25
"""Seconds not scored on each side of a reference boundary (pyannote ``collar=0.5``)."""
THRESHOLDS = tuple(round(t, 2) for t in np.arange(0.3, 0.96, 0.05))


def reference(name: str, folder: Path = SYNTH) -> Conversation:
    (turns,) = read_rttm(folder / "rttm" / f"{name}.rttm").values()
    return Conversation(name, timeline=turns)


def revoiced(target: Path = REVOICED) -> Path:
    """The synthetic dialogues spoken again by :data:`VOICES_APART`: each turn's text (from
    ``turns/*.jsonl``) in its role's voice, the turns in order with the shared set's pauses
    between them; writes ``audio/*.wav``, ``rttm/*.rttm`` (exact: each turn from its first to
    its last loud sample) and ``turns/*.jsonl`` under ``target``, once."""
    for folder in ("audio", "rttm", "turns"):
        (target / folder).mkdir(parents=True, exist_ok=True)
    for path in sorted((SYNTH / "turns").glob("*.jsonl")):
        if (target / "rttm" / f"{path.stem}.rttm").exists():
            continue
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
        parts, timed, at, end = [], [], rows[0]["start"], rows[0]["start"]
        with tempfile.TemporaryDirectory() as tmp:
            for index, row in enumerate(rows):
                if index:
                    at = end + row["start"] - rows[index - 1]["end"]
                try:
                    wav = speak(row["text"], Path(tmp) / "turn.wav", VOICES_APART[row["role"]])
                except EspeakMissingError as error:
                    raise SystemExit(str(error)) from error
                said = trim_silence(load_audio(wav))
                parts.append((round(at * SAMPLE_RATE), said))
                end = at + len(said) / SAMPLE_RATE
                timed.append({**row, "start": round(at, 3), "end": round(end, 3)})
        audio = np.zeros(round((end + 0.5) * SAMPLE_RATE), dtype=np.float32)
        for begin, said in parts:
            audio[begin:begin + len(said)] = said
        sf.write(target / "audio" / f"{path.stem}.wav", audio, SAMPLE_RATE, subtype="PCM_16")
        (target / "turns" / path.name).write_text(
            "".join(json.dumps(row) + "\n" for row in timed), encoding="utf-8")
        write_rttm(Conversation(path.stem, timeline=tuple(
            TimedTurn(row["start"], row["end"], row["role"]) for row in timed)),
            target / "rttm" / f"{path.stem}.rttm")
    return target


def as_conversation(turns: list[SpeakerTurn], name: str) -> Conversation:
    return Conversation(name, timeline=tuple(TimedTurn(t.start, t.end, t.speaker)
                                             for t in turns))


def talk_shares(turns: list[SpeakerTurn]) -> dict[str, float]:
    talk: dict[str, float] = {}
    for turn in turns:
        talk[turn.speaker] = talk.get(turn.speaker, 0.0) + turn.end - turn.start
    total = sum(talk.values()) or 1.0
    return {speaker: round(seconds / total, 3) for speaker, seconds in talk.items()}


def both_counts(diarizer: Diarizer, audio: np.ndarray
                ) -> tuple[dict[str, list[SpeakerTurn]], float, LocalSpeech]:
    """The turns with the count found and with 2 (the units embedded once), the wall time of
    :meth:`Diarizer.diarize` with the count found per second of audio, and the analysis."""
    began = time.perf_counter()
    speech = diarizer.analyse(audio)
    found = diarizer.cluster(speech)
    cost = (time.perf_counter() - began) / (len(audio) / SAMPLE_RATE)
    return {"auto": found, "2": diarizer.cluster(speech, 2)}, cost, speech


def synthetic(diarizer: Diarizer, folder: Path = SYNTH) -> dict[str, Any]:
    rows: dict[str, Any] = {}
    metrics = {"der": DiarizationError(COLLAR), "jer": DiarizationError(COLLAR, jaccard=True)}
    pairs: dict[str, list[tuple[Conversation, Conversation]]] = {"auto": [], "2": []}
    for wav in sorted((folder / "audio").glob("*.wav")):
        truth = reference(wav.stem, folder)
        results, cost, _ = both_counts(diarizer, load_audio(wav))
        row: dict[str, Any] = {"seconds_per_audio_second": round(cost, 3)}
        for mode, turns in results.items():
            found = as_conversation(turns, wav.stem)
            pairs[mode].append((found, truth))
            row[mode] = {key: round(metric.corpus_score([found], [truth]).score, 2)
                         for key, metric in metrics.items()}
            row[mode]["speakers"] = len({t.speaker for t in turns})
        rows[wav.stem] = row
        print(wav.stem, row, flush=True)
    rows["overall"] = {mode: {key: round(metric.corpus_score(*map(list, zip(*scored, strict=True))
                                                             ).score, 2)
                              for key, metric in metrics.items()}
                       for mode, scored in pairs.items()}
    rows["metric"] = metrics["der"].signature()
    return rows


def osce(diarizer: Diarizer, seconds: float | None, words: Path | None,
         merges: list[float], choose: list[str]) -> dict[str, Any]:
    """Speakers found and talk shares per interview; with ``words`` (a folder of medstream json
    transcripts of the interviews, e.g. a finished batch) also WER and cpWER against the
    ``D:``/``P:`` transcripts, with 2 speakers and with the count found at each merge
    similarity of ``merges``, which is chosen on the ``choose`` interviews."""
    rows: dict[str, Any] = {}
    found_at: dict[str, dict[float, tuple[int, float | None]]] = {}
    for mp3 in sorted((OSCE / "audio").glob("*.mp3")):
        audio = load_audio(mp3)
        if seconds is not None:
            audio = audio[: int(seconds * SAMPLE_RATE)]
        results, cost, speech = both_counts(diarizer, audio)
        row: dict[str, Any] = {"seconds": round(len(audio) / SAMPLE_RATE, 1),
                               "seconds_per_audio_second": round(cost, 3)}
        for mode, turns in results.items():
            row[mode] = {"speakers": len({t.speaker for t in turns}),
                         "talk_shares": talk_shares(turns)}
        scorer = _Scorer.of(words, mp3.stem) if words is not None and seconds is None else None
        if scorer is not None:
            row["wer"] = scorer.wer
            row["2"]["cpwer"] = scorer.cpwer(results["2"])
        if merges:
            found_at[mp3.stem] = {}
            for merge in merges:
                turns = diarizer.cluster(speech, merge_similarity=merge)
                found_at[mp3.stem][merge] = (len({t.speaker for t in turns}), None if
                                             scorer is None else scorer.cpwer(turns))
            row["merge_sweep"] = {str(m): v for m, v in found_at[mp3.stem].items()}
        rows[mp3.stem] = row
        print(mp3.stem, row, flush=True)
    if merges:
        rows["merge"] = _chosen_merge(found_at, merges, choose)
    return rows


@dataclass(frozen=True)
class _Scorer:
    """WER and cpWER of one interview's recognised words, given turns."""

    reference: Conversation
    segments: tuple[Segment, ...]
    wer: float

    @classmethod
    def of(cls, folder: Path, name: str) -> _Scorer:
        doc = TranscriptDocument.from_json((folder / f"{name}.json").read_text(encoding="utf-8"))
        reference = Conversation(name, transcript=read_role_transcript(
            OSCE / "transcripts" / f"{name}.txt"))
        plain = Conversation(name, transcript=tuple(TextTurn("?", s.text)
                                                    for s in doc.segments))
        wer = AttributedWER("wer").corpus_score([plain], [reference]).score
        return cls(reference, doc.segments, round(wer, 2))

    def cpwer(self, turns: list[SpeakerTurn]) -> float:
        said = assign_speakers(self.segments, turns)
        found = Conversation(self.reference.id, transcript=tuple(
            TextTurn(s.speaker or "?", s.text) for s in said))
        return round(AttributedWER("cpwer").corpus_score([found], [self.reference]).score, 2)


def _chosen_merge(found_at: dict[str, dict[float, tuple[int, float | None]]],
                  merges: list[float], choose: list[str]) -> dict[str, Any]:
    """The merge similarity whose count is right (2) on most ``choose`` interviews, then the
    lowest summed cpWER there; and how it does on the other interviews."""
    def rank(merge: float) -> tuple[int, float]:
        rows = [found_at[name][merge] for name in choose if name in found_at]
        return (-sum(count == 2 for count, _ in rows), sum(c or 0.0 for _, c in rows))

    best = min(merges, key=rank)
    return {"chosen_on": choose, "merge_similarity": best, "reported": {
        name: found_at[name][best] for name in found_at if name not in choose}}


def utterances(audio: np.ndarray) -> list[tuple[int, int]]:
    """(start, end) samples of each utterance the live VAD cuts from ``audio``."""
    vad = StreamingVAD()
    cuts: list[tuple[int, int]] = []
    onset: int | None = None
    events = [*vad.feed(audio), *vad.feed(np.zeros(SAMPLE_RATE, dtype=np.float32))]
    for event in events:
        if event.kind == "onset":
            onset = event.sample
        elif onset is not None:
            cuts.append((onset, min(event.sample, len(audio))))
            onset = None
    if onset is not None:
        cuts.append((onset, len(audio)))
    return cuts


def reference_speaker(truth: Conversation, start: float, end: float) -> str | None:
    """The reference speaker who talks most between start and end (None: nobody)."""
    talk: dict[str, float] = {}
    for turn in truth.timeline or ():
        overlap = min(end, turn.end) - max(start, turn.start)
        if overlap > 0:
            talk[turn.speaker] = talk.get(turn.speaker, 0.0) + overlap
    return max(talk, key=lambda label: talk[label]) if talk else None


def mapped_accuracy(pairs: list[tuple[str, str]]) -> float:
    """Share of (hypothesis, reference) pairs agreeing under the best one-to-one mapping."""
    hyps = sorted({h for h, _ in pairs})
    refs = sorted({r for _, r in pairs})
    counts = np.zeros((len(hyps), len(refs)))
    for h, r in pairs:
        counts[hyps.index(h), refs.index(r)] += 1
    rows, cols = linear_sum_assignment(-counts)
    return float(counts[rows, cols].sum() / max(len(pairs), 1))


def online(diarizer: Diarizer, choose: list[str]) -> dict[str, Any]:
    embedded: dict[str, list[tuple[np.ndarray, str]]] = {}
    for wav in sorted((SYNTH / "audio").glob("*.wav")):
        audio = load_audio(wav)
        truth = reference(wav.stem)
        items = []
        for start, end in utterances(audio):
            speaker = reference_speaker(truth, start / SAMPLE_RATE, end / SAMPLE_RATE)
            if speaker is not None:
                items.append((diarizer.embed(audio[start:end]), speaker))
        embedded[wav.stem] = items

    def accuracy(names: list[str], threshold: float, most: int | None) -> tuple[float, float]:
        scores, counts = [], []
        for name in names:
            session = OnlineSpeakers(diarizer, threshold=threshold, max_speakers=most)
            pairs = [(session.assign_embedding(e)[0], r) for e, r in embedded[name]]
            scores.append(mapped_accuracy(pairs))
            counts.append(len(session.speakers))
        return float(np.mean(scores)), float(np.mean(counts))

    report = [n for n in embedded if n not in choose]
    result: dict[str, Any] = {"utterances": {n: len(v) for n, v in embedded.items()},
                              "chosen_on": choose, "reported_on": report}
    for most in (None, 2):
        sweep = {t: accuracy(choose, t, most) for t in THRESHOLDS}
        best = max(sweep, key=lambda t: (sweep[t][0], -abs(t - 0.6)))
        acc, found = accuracy(report, best, most)
        result[f"max_speakers={most}"] = {
            "threshold": best, "accuracy_chosen": round(sweep[best][0], 4),
            "accuracy_reported": round(acc, 4), "speakers_reported": found,
            "sweep": {t: round(a, 3) for t, (a, _) in sweep.items()}}
        print("online", most, result[f"max_speakers={most}"], flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path)
    parser.add_argument("--only", default="synthetic,online,osce")
    parser.add_argument("--revoiced", action="store_true",
                        help="also the synthetic dialogues spoken by two voices that differ")
    parser.add_argument("--osce-seconds", type=float, default=None,
                        help="diarize only the first S seconds of each OSCE interview")
    parser.add_argument("--choose", default="mts_valid_1,mts_valid_61",
                        help="synthetic recordings the online threshold is chosen on")
    parser.add_argument("--osce-words", type=Path, default=None,
                        help="folder of medstream json transcripts of the OSCE interviews "
                             "(a finished batch): WER and cpWER too")
    parser.add_argument("--merges", default="",
                        help="merge similarities to sweep for the count found, e.g. "
                             "0.7,0.75,0.8 (chosen on --osce-choose)")
    parser.add_argument("--osce-choose", default="CAR0001,GAS0001")
    args = parser.parse_args()
    parts = args.only.split(",")
    diarizer = load_diarizer()
    results: dict[str, Any] = {"model": diarizer.identifier, "settings": diarizer.settings()}
    if "synthetic" in parts:
        results["synthetic"] = synthetic(diarizer)
        if args.revoiced:
            results["synthetic_revoiced"] = synthetic(diarizer, revoiced())
    if "online" in parts:
        results["online"] = online(diarizer, args.choose.split(","))
    if "osce" in parts:
        merges = [float(m) for m in args.merges.split(",") if m]
        results["osce"] = osce(diarizer, args.osce_seconds, args.osce_words, merges,
                               args.osce_choose.split(","))
    text = json.dumps(results, indent=1)
    if args.json:
        args.json.write_text(text + "\n", encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
