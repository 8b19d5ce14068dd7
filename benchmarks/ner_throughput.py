"""NER tagger throughput on CPU, on raw text as users hand it over.

Tags the NCBI-disease devel abstracts as written (``devel.raw.jsonl``: PubTator originals,
about 1,300 characters each) after a warm-up, and prints documents and characters per second
with the strict F1 (exact character spans, the corpus' head) of each way of running:

* the shipped tagger (or ``--model``) as it runs now: sentence by sentence, windows of the
  training length (``TaggerOptions()``);
* the obvious alternative, each abstract in one piece, cut only into windows of the model's
  limit (``TaggerOptions(sentences=False, max_length=None)``: what the tagger did before);
* with ``--hf DIR`` (a recipe's transformers export), that fp32 model against its int8
  CTranslate2 export (made in a temporary folder unless ``--ct2``), both sentence by sentence.

Ratios are printed against the first row. Timings on a shared machine are noisy.

    python benchmarks/ner_throughput.py [--model medical-en] [--hf DIR [--ct2 DIR]]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from eval.entities import entity_f1
from ner.abbreviations import AbbreviationMemory
from ner.catalog import DEFAULT_NER_MODEL, resolve_ner_model
from ner.export import export_ctranslate2
from ner.iob import Span
from ner.raw_corpora import RawDocument, raw_split
from ner.tagger import TaggerOptions, TransformerTagger

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "ner"
CORPUS = "ncbi_disease"


def measure(tagger: TransformerTagger, documents: list[RawDocument]) -> tuple[float, float,
                                                                               float]:
    """(documents per second, characters per second, strict micro F1) over ``documents``."""
    tagger.tag_batch([d.text for d in documents[:4]], CORPUS)  # warm-up
    start = time.perf_counter()
    found = tagger.tag_batch([d.text for d in documents], CORPUS)
    elapsed = time.perf_counter() - start
    predicted = [[Span(e.start, e.end, e.type.value)
                  for e in AbbreviationMemory(0).resolve(d.text, entities)]
                 for d, entities in zip(documents, found, strict=True)]
    f1 = entity_f1([d.spans for d in documents], predicted).micro.f1
    return len(documents) / elapsed, sum(len(d.text) for d in documents) / elapsed, f1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=DEFAULT_NER_MODEL, help="shipped name or directory")
    parser.add_argument("--hf", type=Path, help="a recipe's transformers export (fp32)")
    parser.add_argument("--ct2", type=Path, help="its CTranslate2 export (made if absent)")
    parser.add_argument("--documents", type=int, default=100)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    documents, original = raw_split(DATA, CORPUS, "devel")
    if not original:
        raise SystemExit(f"{DATA / CORPUS / 'devel.raw.jsonl'} is missing: the benchmark "
                         "measures raw text")
    documents = documents[:args.documents]
    path = resolve_ner_model(args.model).path
    now = TaggerOptions(batch_size=args.batch_size)
    whole = TaggerOptions(batch_size=args.batch_size, sentences=False, max_length=None)
    results = {f"{args.model}, sentences": measure(TransformerTagger(path, now), documents),
               f"{args.model}, whole texts": measure(TransformerTagger(path, whole), documents)}
    if args.hf is not None:
        with tempfile.TemporaryDirectory() as tmp:
            ct2 = args.ct2 or export_ctranslate2(args.hf, Path(tmp) / "int8")
            results["transformers fp32"] = measure(TransformerTagger(args.hf, now), documents)
            results["ctranslate2 int8"] = measure(TransformerTagger(ct2, now), documents)
    print(f"{len(documents)} NCBI-disease devel abstracts as written, "
          f"{sum(len(d.text) for d in documents):,} characters; {args.threads} threads")
    print(f"{'tagger':<34}{'docs/s':>8}{'chars/s':>9}{'strict F1':>11}{'speed ratio':>13}")
    first = next(iter(results.values()))[0]
    for name, (docs, chars, f1) in results.items():
        print(f"{name:<34}{docs:>8.2f}{chars:>9.0f}{100 * f1:>11.2f}{docs / first:>12.2f}x")


if __name__ == "__main__":
    main()
