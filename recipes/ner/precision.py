"""What each recognizer of the pipeline adds: false positives on raw corpus text, entities in
conversations.

The pipeline (``medstream ner``) merges the tagger (read through its view) with the built-in
lexicon, then applies the rules (attributes and negation: they mark entities, they add none).
On a corpus with gold spans this counts, per source of the merged output (``model``,
``lexicon``, ``abbreviation``), the entities of the corpus' types and how many of them are
false positives, against the tagger's view alone. On role-labelled dialogues (no gold) it
lists what each source finds, per turn role, for a reader to judge.

    .venv/bin/python recipes/ner/precision.py --part choose --dialogues 8 --out /tmp/prec.json
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ner.abbreviations import AbbreviationMemory
from ner.catalog import DEFAULT_NER_MODEL, resolve_ner_model
from ner.evaluation import pipeline_recognizer
from ner.raw_corpora import PARTS, document_part, raw_split
from ner.schema import annotated_types
from ner.tagger import TransformerTagger
from ner.types import Entity

DIALOGUE_FILES = ("mts_dialog/valid.jsonl", "aci_bench/valid.jsonl")


def corpus_counts(tagger: TransformerTagger, root: Path, corpus: str, part: str) -> dict[str, Any]:
    """Predicted and false-positive entities per source, merged pipeline vs tagger alone."""
    documents, original = raw_split(root, corpus, "devel")
    chosen = document_part(documents, part)  # type: ignore[arg-type]  # checked by argparse
    kinds = {t.value for t in annotated_types(corpus)}
    texts = [d.text for d in chosen]
    merged = pipeline_recognizer(tagger).recognize(
        texts, "en", None if original else AbbreviationMemory(10))
    alone = tagger.tag_batch(texts)
    result: dict[str, Any] = {"documents": len(chosen), "original_text": original,
                              "gold": sum(len(d.spans) for d in chosen)}
    for name, found in (("pipeline", merged), ("tagger_view", alone)):
        predicted: Counter[str] = Counter()
        wrong: Counter[str] = Counter()
        examples: dict[str, list[str]] = {}
        correct = 0
        for document, entities in zip(chosen, found, strict=True):
            gold = {(s.start, s.end, s.type) for s in document.spans}
            for entity in entities:
                if entity.type.value not in kinds:
                    continue
                predicted[entity.source] += 1
                if (entity.start, entity.end, entity.type.value) in gold:
                    correct += 1
                else:
                    wrong[entity.source] += 1
                    examples.setdefault(entity.source, []).append(entity.text)
        total = sum(predicted.values())
        precision = correct / total if total else 0.0
        recall = correct / result["gold"] if result["gold"] else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        result[name] = {"predicted": dict(predicted), "false_positives": dict(wrong),
                        "precision": 100 * precision, "recall": 100 * recall, "f1": 100 * f1,
                        "false_positive_examples": {k: v[:40] for k, v in examples.items()}}
    return result


def dialogue_entities(tagger: TransformerTagger, root: Path, count: int) -> dict[str, Any]:
    """The entities the pipeline finds in the first ``count`` dialogues of each file of
    :data:`DIALOGUE_FILES`, turn by turn (a dialogue read as one stream of segments)."""
    recognizer = pipeline_recognizer(tagger)
    result: dict[str, Any] = {}
    for name in DIALOGUE_FILES:
        path = root / name
        lines = path.read_text(encoding="utf-8").splitlines()[:count]
        by_source: Counter[str] = Counter()
        found: list[dict[str, Any]] = []
        for line in lines:
            dialogue = json.loads(line)
            turns = [t for t in dialogue["turns"] if t["text"].strip()]
            entities = recognizer.recognize([t["text"] for t in turns], "en",
                                            AbbreviationMemory(None))
            for turn, turn_entities in zip(turns, entities, strict=True):
                by_source.update(e.source for e in turn_entities)
                found.extend(_listed(dialogue["id"], turn, e) for e in turn_entities)
        result[name] = {"dialogues": len(lines), "entities_by_source": dict(by_source),
                        "entities": found}
    return result


def _listed(dialogue: str, turn: dict[str, str], entity: Entity) -> dict[str, Any]:
    return {"dialogue": dialogue, "role": turn["role"], "text": entity.text,
            "type": entity.type.value, "source": entity.source, "negated": entity.negated,
            "context": turn["text"][max(0, entity.start - 40):entity.end + 40]}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=DEFAULT_NER_MODEL)
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--part", choices=PARTS, default="choose")
    parser.add_argument("--corpora", nargs="*", default=["ncbi_disease", "bc5cdr"])
    parser.add_argument("--dialogues", type=int, default=8,
                        help="dialogues read from each file (0: none)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    tagger = TransformerTagger(resolve_ner_model(args.model).path)
    report: dict[str, Any] = {"part": args.part, "model": args.model, "corpora": {}}
    for corpus in args.corpora:
        report["corpora"][corpus] = corpus_counts(tagger, args.data / "ner", corpus, args.part)
        summary = {k: report["corpora"][corpus][k]["false_positives"]
                   for k in ("pipeline", "tagger_view")}
        print(corpus, summary, flush=True)
    if args.dialogues:
        report["dialogue"] = dialogue_entities(tagger, args.data / "dialogue", args.dialogues)
    args.out.write_text(json.dumps(report, indent=1, ensure_ascii=False), encoding="utf-8")


if __name__ == "__main__":
    main()
