"""A synthetic conversation with long patient turns, for live latency on monologues.

Real consultations have patients talking for 15-30 s at a stretch; the timed synthetic
dialogues (``speech/synth_dialogue_en``) have short turns only. This builds one from a
role-labelled ACI-Bench dialogue (``../shared/data/dialogue/aci_bench``): clinician turns of at
most two sentences in one espeak-ng voice, patient turns in another, each patient turn a run of
whole sentences of about ``--min-turn``-``--max-turn`` seconds (consecutive patient turns are
joined; short answers stay short). Sentences are synthesised one at a time and joined with a
pause of 0.20-0.35 s, shorter than the live server's 0.5 s end of utterance, so a whole turn is
one utterance for the VAD; turns are 1 s apart. Written to ``.cache/long_turns/<dialogue>/``:

* ``audio.wav`` (16 kHz mono PCM),
* ``reference.txt`` (the words spoken, sentence per line),
* ``sentences.jsonl`` (per sentence: ``turn``, ``role``, ``start``, ``end`` in seconds,
  ``text``): exact sentence times, against which a live final's lag is measured.

    python benchmarks/long_turns.py [--dialogue D2N001] [--split train] [--seconds 240]
"""

from __future__ import annotations

import argparse
import json
import re
import tempfile
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from speech.audio import SAMPLE_RATE, load_audio
from speech.synthetic import EspeakMissingError, speak, trim_silence

REPO = Path(__file__).resolve().parents[1]
DIALOGUES = REPO.parent / "shared" / "data" / "dialogue" / "aci_bench"
CACHE = REPO / ".cache" / "long_turns"
VOICES = {"clinician": "en-us", "patient": "en-gb"}
WORDS_PER_MINUTE = 160
"""espeak-ng's rate setting."""
SPOKEN_WORDS_PER_MINUTE = 200
"""The rate its sentences come out at, once their leading and trailing silence is cut."""
LONGEST = 30
"""Words in a sentence at most."""
SILENCE = 0.01
"""Peak amplitude under which espeak-ng's leading and trailing audio counts as silence."""


@dataclass(frozen=True)
class Sentence:
    turn: int
    role: str
    text: str


def detokenize(text: str) -> str:
    """ACI-Bench text as written (it is lower-cased and tokenised: ``i do n't know , so``)."""
    text = re.sub(r"\s+([,.?!;:%])", r"\1", text)
    text = re.sub(r"\s+(n't|'s|'re|'ve|'ll|'d|'m)\b", r"\1", text)
    text = re.sub(r"\bi\b", "I", text)
    return re.sub(r"(^|[.?!]\s+)([a-z])", lambda m: m.group(1) + m.group(2).upper(), text)


SENTENCE_BREAK = re.compile(r"(?<=[.?!])(?<!\b[DdMm]r\.)(?<!\b[Mm]rs\.)(?<!\b[Mm]s\.)\s+")
"""Where a turn's text is cut into sentences: after ``.``, ``?``, ``!``, but not after the
title of a name ("I asked Dr. Lewis" is one sentence, spoken without a pause)."""


def sentences_of(text: str) -> list[str]:
    """The sentences of a turn; a run-on sentence of more than ``LONGEST`` words (the
    transcribers did not always punctuate) is cut at commas (or every ``LONGEST`` words)
    into sentences of its own."""
    out: list[str] = []
    for part in re.split(SENTENCE_BREAK, detokenize(text).strip()):
        if len(re.findall(r"\w+", part)) < 2:
            continue
        pieces: list[str] = []
        clauses = [" ".join(words[i:i + LONGEST]) for clause in re.split(r"(?<=,)\s+", part)
                   if (words := clause.split()) for i in range(0, len(words), LONGEST)]
        for clause in clauses:
            if pieces and len(f"{pieces[-1]} {clause}".split()) <= LONGEST:
                pieces[-1] = f"{pieces[-1]} {clause}"
            else:
                pieces.append(clause)
        out.extend(p.rstrip(",") + ("" if p.rstrip(",")[-1:] in ".?!" else ".")
                   for p in (p[:1].upper() + p[1:] for p in pieces))
    return out


def script(dialogue: dict[str, object], seconds: float, min_turn: float,
           max_turn: float) -> list[Sentence]:
    """The sentences to speak, turn by turn, up to about ``seconds`` of speech.

    Clinician turns are cut to two sentences. A patient's consecutive turns, and the
    clinician's backchannels between them (``okay.``, ``mm-hmm.``: dropped), are one run of
    sentences, split into turns of at most ``max_turn`` seconds (a rest shorter than
    ``min_turn`` joins the turn before it when that stays near ``max_turn``)."""
    per_second = SPOKEN_WORDS_PER_MINUTE / 60
    out: list[Sentence] = []
    turn, spoken = 0, 0.0
    run: list[str] = []

    def length(sentences: list[str]) -> float:
        return sum(len(s.split()) for s in sentences) / per_second

    def speak(role: str, sentences: list[str]) -> None:
        nonlocal turn, spoken
        out.extend(Sentence(turn, role, s) for s in sentences)
        spoken += length(sentences) + 1
        turn += 1

    def flush() -> None:
        groups: list[list[str]] = [[]]
        for sentence in run:
            if groups[-1] and length([*groups[-1], sentence]) > max_turn:
                groups.append([])
            groups[-1].append(sentence)
        if len(groups) > 1 and length(groups[-1]) < min_turn and \
                length(groups[-2] + groups[-1]) <= max_turn + 5:
            groups[-2:] = [groups[-2] + groups[-1]]
        for group in groups:
            if group:
                speak("patient", group)
        run.clear()

    turns = dialogue["turns"]
    assert isinstance(turns, list)
    for item in turns:
        text = sentences_of(item["text"])
        if not text or item["role"] not in VOICES or spoken >= seconds:
            continue
        if item["role"] == "patient":
            run.extend(text)
        elif run and length(run) < min_turn and len(item["text"].split()) <= 4:
            continue  # a backchannel while the patient is talking
        else:
            flush()
            speak("clinician", text[:2])
    flush()
    return out


def synthesise(text: str, voice: str, folder: Path) -> np.ndarray:
    """One sentence by espeak-ng, without its leading and trailing silence."""
    try:
        path = speak(text, folder / "sentence.wav", voice, WORDS_PER_MINUTE)
    except EspeakMissingError as error:
        raise SystemExit(str(error)) from error
    return trim_silence(load_audio(path), SILENCE)


def build(dialogue_id: str, split: str, seconds: float, min_turn: float, max_turn: float,
          seed: int = 0) -> Path:
    """Write the conversation's files (see the module docstring); returns its folder."""
    rows = [json.loads(line) for line in
            (DIALOGUES / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()]
    matches = [r for r in rows if r["id"] == dialogue_id]
    if not matches:
        raise SystemExit(f"no dialogue {dialogue_id!r} in {DIALOGUES / split}.jsonl")
    rng = np.random.default_rng(seed)
    sentences = script(matches[0], seconds, min_turn, max_turn)
    pieces: list[np.ndarray] = [np.zeros(SAMPLE_RATE // 2, np.float32)]
    clock = 0.5
    records: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for index, sentence in enumerate(sentences):
            audio = synthesise(sentence.text, VOICES[sentence.role], Path(tmp))
            records.append({"turn": sentence.turn, "role": sentence.role,
                            "start": round(clock, 3),
                            "end": round(clock + len(audio) / SAMPLE_RATE, 3),
                            "text": sentence.text})
            pieces.append(audio)
            clock += len(audio) / SAMPLE_RATE
            last = index + 1 == len(sentences)
            same_turn = not last and sentences[index + 1].turn == sentence.turn
            gap = float(rng.uniform(0.20, 0.35)) if same_turn else 1.0
            pieces.append(np.zeros(round(gap * SAMPLE_RATE), np.float32))
            clock += round(gap * SAMPLE_RATE) / SAMPLE_RATE
    folder = CACHE / dialogue_id
    folder.mkdir(parents=True, exist_ok=True)
    samples = np.clip(np.concatenate(pieces), -1, 1)
    with wave.open(str(folder / "audio.wav"), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes((samples * 32767).astype("<i2").tobytes())
    (folder / "reference.txt").write_text("\n".join(str(r["text"]) for r in records) + "\n",
                                          encoding="utf-8")
    (folder / "sentences.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return folder


def turn_lengths(folder: Path) -> list[tuple[str, float]]:
    """Role and seconds of each turn of a built conversation."""
    turns: dict[int, list[dict[str, Any]]] = {}
    for line in (folder / "sentences.jsonl").read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        turns.setdefault(int(record["turn"]), []).append(record)
    return [(str(t[0]["role"]), float(t[-1]["end"]) - float(t[0]["start"]))
            for t in turns.values()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dialogue", default="D2N001")
    parser.add_argument("--split", default="train", choices=["train", "valid"])
    parser.add_argument("--seconds", type=float, default=240.0,
                        help="about this much speech")
    parser.add_argument("--min-turn", type=float, default=15.0)
    parser.add_argument("--max-turn", type=float, default=30.0)
    args = parser.parse_args()
    folder = build(args.dialogue, args.split, args.seconds, args.min_turn, args.max_turn)
    lengths = turn_lengths(folder)
    long = [s for role, s in lengths if role == "patient" and s >= 15]
    print(f"{folder}: {len(lengths)} turns, {len(long)} patient turns of 15 s or more "
          f"({', '.join(f'{s:.0f}' for s in long)} s)")


if __name__ == "__main__":
    main()
