"""Constrained decoding speed: hard and soft terminology modes against unconstrained decoding.

The same CTranslate2 model translates the same WMT23 terminology segments (held-out part,
``terms_proper`` as constraints) in one process, after a warm-up, in each mode; the script
prints sentences per second, the slowdown against unconstrained decoding (target: hard mode
at most 2×), and the term success each mode reaches. Hard mode runs with both repairs
(``replace``, the default, and ``continue``).

    python benchmarks/constrained_decoding.py --model DIR [--segments 500] [--beam 4]

``DIR`` is a CTranslate2 MT model directory with its tokenizer files (``recipes/mt`` or
``recipes.mt.tiny_marian`` output, or ``medstream models convert``).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from eval.readers import read_terminology_jsonl
from translate.catalog import load_mt
from translate.constraints import pair_constraints
from translate.translator import Terminology, Translator
from translate.types import RepairMode, TermMode, TranslateOptions

WMT23 = (Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mt"
         / "wmt23_terminology" / "wmt23_terminology.de-en.jsonl")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="CTranslate2 MT model directory")
    parser.add_argument("--data", type=Path, default=WMT23)
    parser.add_argument("--segments", type=int, default=500, help="the last N segments")
    parser.add_argument("--beam", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=2, help="best of N runs per mode")
    args = parser.parse_args()

    segments = read_terminology_jsonl(args.data)[-args.segments:]
    texts = [s.src for s in segments]
    terms = [pair_constraints(s.src, [(p.source, p.target) for p in s.terms_proper],
                              s.src_lang) for s in segments]
    translator = Translator(load_mt(args.model), Terminology(numbers=False))
    translator.translate(texts[:16], "de", "en", TranslateOptions(terms="none"), terms[:16])

    rows = []
    runs: list[tuple[TermMode, RepairMode]] = [
        ("none", "replace"), ("soft", "replace"), ("hard", "replace"), ("hard", "continue")]
    for mode, repair in runs:
        options = TranslateOptions(terms=mode, beam_size=args.beam, batch_size=args.batch_size,
                                   repair=repair)
        best = float("inf")
        for _ in range(args.repeats):
            start = time.perf_counter()
            results = translator.translate(texts, "de", "en", options, terms)
            best = min(best, time.perf_counter() - start)
        uses = [u for r in results for u in r.terms]
        success = 100 * sum(u.satisfied for u in uses) / max(len(uses), 1)
        forced = sum(u.forced for u in uses)
        label = f"{mode} ({repair})" if mode == "hard" else mode
        rows.append((label, len(texts) / best, success, forced))

    baseline = rows[0][1]
    print(f"model: {translator.identifier}; {len(texts)} segments, beam {args.beam}, "
          f"{sum(len(t) for t in terms)} terms")
    print(f"{'mode':<16}{'sent/s':>9}{'time vs none':>14}{'term success %':>16}{'forced':>8}")
    for label, speed, success, forced in rows:
        print(f"{label:<16}{speed:>9.1f}{baseline / speed:>13.2f}x{success:>16.1f}{forced:>8}")


if __name__ == "__main__":
    main()
