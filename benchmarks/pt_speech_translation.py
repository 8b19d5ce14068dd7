"""Portuguese speech to English text: the cascade (Whisper transcribes Portuguese, the packaged
Bergamot pt→en model translates) against Whisper's own speech translation (``--task translate``).

Speech: the Portuguese side of TICO-19 dev rows (professional pt-BR translations of COVID-19
material) spoken by espeak-ng (voice ``pt-br``); the reference is the English side. Rows are
taken from the second half of the dev file (the first half is where the MT settings were
chosen). Both methods run through ``medstream transcribe`` exactly as a user runs it, on the same
wav files, with the same Whisper model; corpus BLEU and chrF (sacrebleu, signatures printed),
the WER of the Portuguese transcripts against the spoken text, and the wall time of each run are
printed, with the ratios. With ``--fleurs``, the WER of real Portuguese recordings (FLEURS pt-BR,
10 utterances) is measured too. Usage::

    .venv/bin/python benchmarks/pt_speech_translation.py --rows 40 --model base [--fleurs]

Wall times on a shared 2-core machine vary by ±20 % from run to run: compare within one run.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from sacrebleu.metrics.bleu import BLEU
from sacrebleu.metrics.chrf import CHRF

from eval.readers import read_manifest
from eval.wer import error_rate
from speech.synthetic import speak

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
TICO = DATA / "mt" / "tico19" / "tico19_dev.en-pt.tsv"
FLEURS = DATA / "speech" / "fleurs_cuttledoc"
MEDSTREAM = str(Path(sys.executable).with_name("medstream"))


def tico_rows(count: int, max_chars: int) -> list[dict[str, str]]:
    """``count`` rows from the second half of the dev file, short enough to speak (≤ max_chars
    characters of Portuguese), in file order."""
    with TICO.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))
    second_half = rows[len(rows) // 2:]
    chosen = [row for row in second_half if 20 <= len(row["ref"]) <= max_chars]
    step = max(1, len(chosen) // count)
    return chosen[::step][:count]


def speak_rows(rows: list[dict[str, str]], folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for index, row in enumerate(rows):
        speak(row["ref"], folder / f"tico-{index:03d}.wav", "pt-br", 150)


def transcribe(audio: Path, out: Path, extra: list[str]) -> tuple[float, dict[str, dict[str, Any]]]:
    """Run ``medstream transcribe`` on a folder; (wall seconds, json document per file stem)."""
    started = time.perf_counter()
    subprocess.run([MEDSTREAM, "transcribe", str(audio), "-o", str(out), "--format", "json",
                    "--offline", "--workers", "1", *extra], check=True,
                   stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    documents = {path.stem: json.loads(path.read_text(encoding="utf-8"))
                 for path in sorted(out.glob("*.json"))}
    return wall, documents


def english_of(document: dict[str, Any]) -> str:
    """The English a document gives: the segments' translations (cascade) or their text
    (Whisper's own translation)."""
    if "translation" in document:
        parts = [(s.get("translation") or {}).get("text") or "" for s in document["segments"]]
        return " ".join(p for p in parts if p).strip()
    return str(document["text"]).strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=40)
    parser.add_argument("--max-chars", type=int, default=220)
    parser.add_argument("--model", default="base")
    parser.add_argument("--fleurs", action="store_true")
    args = parser.parse_args()

    rows = tico_rows(args.rows, args.max_chars)
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        speak_rows(rows, root / "audio")
        common = ["--model", args.model, "--language", "pt"]
        cascade_wall, cascade = transcribe(
            root / "audio", root / "cascade",
            [*common, "--translate-to", "en", "--mt-model", "bergamot-pt-en"])
        whisper_wall, whisper = transcribe(root / "audio", root / "whisper",
                                           [*common, "--task", "translate"])
        keys = [f"tico-{index:03d}" for index in range(len(rows))]
        references = [row["src"] for row in rows]
        results = {}
        for name, documents, wall in (("cascade (Whisper pt + bergamot-pt-en)", cascade,
                                       cascade_wall),
                                      ("Whisper speech translation", whisper, whisper_wall)):
            hypotheses = [english_of(documents[key]) for key in keys]
            bleu, chrf = BLEU(), CHRF()
            results[name] = (bleu.corpus_score(hypotheses, [references]),
                             chrf.corpus_score(hypotheses, [references]), wall)
            signatures = (bleu.get_signature(), chrf.get_signature())
        pt_wer = error_rate([row["ref"] for row in rows],
                            [str(cascade[key]["text"]) for key in keys], language="pt")
        print(f"{len(rows)} TICO-19 dev rows (second half), espeak-ng pt-br, Whisper {args.model}")
        for name, (bleu_score, chrf_score, wall) in results.items():
            print(f"  {name:40s} BLEU {bleu_score.score:5.1f}  chrF {chrf_score.score:5.1f}  "
                  f"wall {wall:6.1f} s")
        (_, cascade_chrf, cascade_time), (_, whisper_chrf, whisper_time) = results.values()
        print(f"  chrF cascade - whisper: {cascade_chrf.score - whisper_chrf.score:+.1f}; "
              f"wall time cascade / whisper: {cascade_time / whisper_time:.2f}x")
        print(f"  WER of the Portuguese transcripts (cascade's first step): {pt_wer.score:.1f} % "
              f"({pt_wer.signature})")
        print(f"  signatures: BLEU {signatures[0]}; chrF {signatures[1]}")
        if args.fleurs:
            fleurs_wer(root, args.model)


def fleurs_wer(root: Path, model: str) -> None:
    entries = [e for e in read_manifest(FLEURS / "manifest.jsonl") if e.lang == "pt"]
    audio = root / "fleurs"
    audio.mkdir()
    for entry in entries:
        (audio / entry.audio_filepath.name).symlink_to(entry.audio_filepath)
    _, documents = transcribe(audio, root / "fleurs-out", ["--model", model, "--language", "pt"])
    hypotheses = [str(documents[e.audio_filepath.stem]["text"]) for e in entries]
    wer = error_rate([e.text for e in entries], hypotheses, language="pt")
    print(f"FLEURS pt-BR ({len(entries)} real recordings), Whisper {model}: "
          f"WER {wer.score:.1f} %")


if __name__ == "__main__":
    main()
