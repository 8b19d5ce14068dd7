"""Constrained decoding speed: hard and soft terminology modes against unconstrained decoding.

The same CTranslate2 model translates the same WMT23 terminology segments (held-out part,
``terms_proper`` as constraints) in one process, after a warm-up, in each mode; the script
prints sentences per second, the slowdown against unconstrained decoding (target: hard mode
at most 2×), and the term success each mode reaches. Hard mode runs with both repairs
(``replace``, the default, and ``continue``).

    python benchmarks/constrained_decoding.py --model DIR [--segments 500] [--beam 4]

``DIR`` is a CTranslate2 MT model directory with its tokenizer files (``recipes/mt`` or
``recipes.mt.tiny_marian`` output, or ``medstream models convert``).

A text engine (``--model bergamot-en-pt`` or ``bergamot-pt-en``) runs on the last
``--segments`` rows of TICO-19 en–pt dev instead (read backwards for pt→en) with the TICO-19
en–pt glossary (reversed likewise) as constraints, in modes none, soft and hard (a text engine
has no repair variants); each repeat starts a fresh translator, so no term rendering is reused
from an earlier run. Then the live cost: the median time of one call with one sentence (a
live final) per mode.

    python benchmarks/constrained_decoding.py --model bergamot-en-pt [--segments 500]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Sequence
from pathlib import Path

from eval.mt_run import reversed_entries, reversed_segments
from eval.readers import read_parallel_tsv, read_terminology_jsonl
from translate.backends.base import MTBackend
from translate.catalog import load_mt_model
from translate.constraints import pair_constraints
from translate.glossary import read_glossary
from translate.protocol import TextTranslator, make_translator
from translate.translator import Terminology, Translator
from translate.types import RepairMode, TermMode, TranslateOptions

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
WMT23 = DATA / "mt" / "wmt23_terminology" / "wmt23_terminology.de-en.jsonl"
TICO = DATA / "mt" / "tico19" / "tico19_dev.en-pt.tsv"
TICO_TERMS = DATA / "terms" / "tico19_terms.en-pt.tsv"
LIVE_FINALS = 100
"""Sentences translated one call each for the live cost."""

Row = tuple[str, float, float, int]
"""Mode, sentences per second, term success %, terms forced."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="CTranslate2 MT model directory, or a "
                        "text engine (bergamot-en-pt, bergamot-pt-en)")
    parser.add_argument("--data", type=Path, default=WMT23)
    parser.add_argument("--segments", type=int, default=500, help="the last N segments")
    parser.add_argument("--beam", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=2, help="best of N runs per mode")
    args = parser.parse_args()

    model = load_mt_model(args.model)
    if not isinstance(model, MTBackend):
        engine_benchmark(args.model, args.segments, args.repeats)
        return
    segments = read_terminology_jsonl(args.data)[-args.segments:]
    texts = [s.src for s in segments]
    terms = [pair_constraints(s.src, [(p.source, p.target) for p in s.terms_proper],
                              s.src_lang) for s in segments]
    translator = Translator(model, Terminology(numbers=False))
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

    print(f"model: {translator.identifier}; {len(texts)} segments, beam {args.beam}, "
          f"{sum(len(t) for t in terms)} terms")
    print_rows(rows)


def print_rows(rows: Sequence[Row]) -> None:
    baseline = rows[0][1]
    print(f"{'mode':<16}{'sent/s':>9}{'time vs none':>14}{'term success %':>16}{'forced':>8}")
    for label, speed, success, forced in rows:
        print(f"{label:<16}{speed:>9.1f}{baseline / speed:>13.2f}x{success:>16.1f}{forced:>8}")


def engine_benchmark(name: str, count: int, repeats: int) -> None:
    """A text engine on TICO-19 with its glossary (module docstring)."""
    segments = list(read_parallel_tsv(TICO).segments)
    entries = read_glossary(TICO_TERMS)
    if name.endswith("pt-en"):
        segments, entries = reversed_segments(segments), reversed_entries(entries)
    segments = segments[-count:]
    source, target = segments[0].src_lang, segments[0].tgt_lang
    texts = [s.src for s in segments]

    model = load_mt_model(name)

    def fresh() -> TextTranslator:
        return make_translator(model, Terminology(entries, numbers=False))

    fresh().translate(texts[:16], source, target, TranslateOptions(terms="none"))
    rows: list[Row] = []
    live: dict[TermMode, float] = {}
    modes: tuple[TermMode, ...] = ("none", "soft", "hard")
    for mode in modes:
        options = TranslateOptions(terms=mode)
        best = float("inf")
        for _ in range(repeats):
            translator = fresh()
            start = time.perf_counter()
            results = translator.translate(texts, source, target, options)
            best = min(best, time.perf_counter() - start)
        uses = [u for r in results for u in r.terms]
        rows.append((mode, len(texts) / best, 100 * sum(u.satisfied for u in uses)
                     / max(len(uses), 1), sum(u.forced for u in uses)))
        live[mode] = _median_call(fresh(), options, source, target, texts[:LIVE_FINALS])
    print(f"model: {fresh().identifier}; TICO-19 dev {source}→{target}, last {len(texts)} "
          f"rows, TICO-19 glossary")
    print_rows(rows)
    print(f"live: one sentence per call, median of {min(LIVE_FINALS, len(texts))}: "
          + ", ".join(f"{mode} {1000 * seconds:.1f} ms" for mode, seconds in live.items()))


def _median_call(translator: TextTranslator, options: TranslateOptions, source: str,
                 target: str, texts: Sequence[str]) -> float:
    """The median time of translating one of ``texts`` per call."""
    times = []
    for text in texts:
        start = time.perf_counter()
        translator.translate([text], source, target, options)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


if __name__ == "__main__":
    main()
