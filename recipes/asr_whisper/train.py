"""Fine-tune Whisper for speech recognition in one language (full or decoder-only, with
SpecAugment), evaluate WER before and after, and export a CTranslate2 model that
``medstream transcribe --model PATH`` loads.

Usage (from the repository root; see recipes/asr_whisper/README.md):

    .venv/bin/python recipes/asr_whisper/train.py --config recipes/asr_whisper/conf/tiny.yaml \\
        --output runs/asr-whisper-tiny
    .venv/bin/python recipes/asr_whisper/train.py --config recipes/asr_whisper/conf/full.yaml \\
        --output runs/asr-whisper-vi --set language=vi \\
        --set 'train_manifests=[data/vi/train.jsonl]' --set 'val_manifests=[data/vi/val.jsonl]'

Steps: 1. read the manifests (NeMo JSONL), keep the entries in ``language``, check every one
(:mod:`recipes.manifests`) and write the usable ones to ``OUTPUT/manifests``; 2. load the model
to fine-tune (or build a tiny random Whisper), apply SpecAugment and, with ``freeze_encoder``,
freeze the encoder; 3. export the starting model to ``OUTPUT/init`` (the baseline);
4. train with ``Seq2SeqTrainer``, recording the loss of every step; 5. export
``OUTPUT/model-hf`` and the CTranslate2 ``OUTPUT/model``; 6. decode the validation utterances
with both exports through medstream's loader and write WER to ``OUTPUT/report.json`` and
``report.md``.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from eval.wer import error_rate
from recipes.config import start
from recipes.manifests import Entry
from recipes.whisper_common import (
    Example,
    TrainResult,
    WhisperRecipeConfig,
    build_model,
    checked_entries,
    dataset,
    decode,
    export,
    run_lines,
    train,
    write_report,
    write_split,
)

logger = logging.getLogger("recipes.asr_whisper")


@dataclass(frozen=True)
class AsrConfig(WhisperRecipeConfig):
    """Every setting of a run (the YAML keys); recorded in ``report.json``."""

    language: str = "en"
    train_manifests: tuple[str, ...] = ()
    val_manifests: tuple[str, ...] = ()
    evaluate_init: bool = True
    """Also export and score the starting model, so the report shows what fine-tuning gained."""


def prepare(config: AsrConfig, output: Path) -> tuple[dict[str, list[Entry]], dict[str, Any]]:
    """Checked entries per split, written to OUTPUT/manifests; and their counts."""
    splits: dict[str, list[Entry]] = {}
    summary: dict[str, Any] = {}
    for split, sources in (("train", config.train_manifests), ("val", config.val_manifests)):
        if not sources:
            raise SystemExit(f"no {split}_manifests in the config")
        entries, problems = checked_entries(sources, (config.language,), config)
        summary[split] = write_split(entries, problems, output, split)
        splits[split] = entries
    return splits, summary


def examples(entries: list[Entry], config: AsrConfig) -> list[Example]:
    return [Example(e.audio_filepath, e.text, config.language, "transcribe") for e in entries]


def evaluate(config: AsrConfig, models: dict[str, Path], entries: list[Entry]
             ) -> list[dict[str, Any]]:
    """WER of each exported model on the validation utterances, decoded by medstream."""
    chosen = entries[: config.eval_utterances] if config.eval_utterances else entries
    references = [e.text for e in chosen]
    rows = []
    for label, path in models.items():
        hypotheses = decode(path, [e.audio_filepath for e in chosen], config.language,
                            "transcribe", config)
        score = error_rate(references, hypotheses, language=config.language)
        rows.append({"model": label, "path": str(path), "wer": score.score,
                     "signature": score.signature, "utterances": len(chosen),
                     "details": score.details,
                     "examples": [{"reference": r, "hypothesis": h}
                                  for r, h in list(zip(references, hypotheses, strict=True))[:3]]})
    return rows


def report(output: Path, config: AsrConfig, data: dict[str, Any], trained: TrainResult,
           rows: list[dict[str, Any]]) -> None:
    losses = trained.summary()
    result = {"config": asdict(config), "data": data, **losses, "wer": rows,
              "model": str(output / "model")}
    lines = [f"# asr_whisper run ({config.language})", "", *run_lines(config, data, losses),
             "| model | WER (%) | utterances |", "|---|---|---|"]
    lines += [f"| {r['model']} | {r['wer']:.1f} | {r['utterances']} |" for r in rows]
    if rows:
        lines += ["", f"WER signature: `{rows[0]['signature']}`"]
    lines += ["", f"Use it: `medstream transcribe --model {output / 'model'} --language "
              f"{config.language} FILES`"]
    write_report(output, result, lines)


def main(argv: list[str] | None = None) -> None:
    config, output = start(argv, AsrConfig, __doc__)
    splits, data = prepare(config, output)
    model, processor = build_model(config)
    models = {}
    if config.evaluate_init:
        models["before fine-tuning"] = export(model, processor, output, "init",
                                              config.export_quantization)
    trained = train(model, processor, dataset(examples(splits["train"], config), processor, config),
                    dataset(examples(splits["val"], config), processor, config), config, output)
    models["fine-tuned"] = export(model, processor, output, "model", config.export_quantization)
    report(output, config, data, trained, evaluate(config, models, splits["val"]))


if __name__ == "__main__":
    main()
