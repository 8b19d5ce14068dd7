"""NER tagger throughput on CPU: transformers fp32 against the int8 CTranslate2 export.

Both tag the same devel sentences of the shared NER corpora in one process, after a warm-up;
the script prints sentences per second, the speed-up, and the strict entity F1 of each (the
int8 export should stay within a point of fp32).

    python benchmarks/ner_throughput.py --model /path/to/recipe/export [--ct2 DIR]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from eval.entities import entity_f1
from ner.evaluation import tag_split
from ner.export import export_ctranslate2
from ner.tagger import TaggerOptions, TransformerTagger

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "ner"


def measure(tagger: TransformerTagger, corpora: list[str], limit: int) -> tuple[float, float,
                                                                                 int]:
    """(sentences per second, strict micro F1 over the corpora, sentences)."""
    tag_split(tagger, DATA, corpora[0], "devel", 16)  # warm-up
    gold, predicted = [], []
    start = time.perf_counter()
    for corpus in corpora:
        split = tag_split(tagger, DATA, corpus, "devel", limit, variants=["original"])[0]
        gold += [s.spans for s in split.gold]
        predicted += [s.spans for s in split.predicted]
    elapsed = time.perf_counter() - start
    return len(gold) / elapsed, entity_f1(gold, predicted).micro.f1, len(gold)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, required=True, help="the recipe's HF export")
    parser.add_argument("--ct2", type=Path, help="its CTranslate2 export (made if absent)")
    parser.add_argument("--sentences", type=int, default=500, help="per corpus")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    corpora = ["ncbi_disease", "bc5cdr", "anatem"]
    options = TaggerOptions(batch_size=args.batch_size)
    with tempfile.TemporaryDirectory() as tmp:
        ct2 = args.ct2 or export_ctranslate2(args.model, Path(tmp) / "int8")
        results = {"transformers fp32": measure(TransformerTagger(args.model, options),
                                                corpora, args.sentences),
                   "ctranslate2 int8": measure(TransformerTagger(ct2, options),
                                               corpora, args.sentences)}
    print(f"{'tagger':<20}{'sentences':>10}{'sent/s':>10}{'strict F1':>11}")
    for name, (speed, f1, count) in results.items():
        print(f"{name:<20}{count:>10}{speed:>10.1f}{100 * f1:>11.2f}")
    (fp32_speed, fp32_f1, _), (int8_speed, int8_f1, _) = results.values()
    print(f"speed-up int8/fp32: {int8_speed / fp32_speed:.2f}x; "
          f"F1 difference: {100 * (int8_f1 - fp32_f1):+.2f} points")


if __name__ == "__main__":
    main()
