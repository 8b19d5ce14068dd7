"""Fine-tune Whisper for end-to-end speech translation on a MultiMed-ST-style manifest, export a
CTranslate2 model that medstream loads, and compare it with the cascade (ASR → MT) and with a
reference Whisper's own speech translation by BLEU and chrF in one report.

Usage (from the repository root; see recipes/st_whisper/README.md):

    .venv/bin/python recipes/st_whisper/train.py --config recipes/st_whisper/conf/tiny.yaml \\
        --output runs/st-whisper-tiny
    .venv/bin/python recipes/st_whisper/train.py --config recipes/st_whisper/conf/full.yaml \\
        --output runs/st-whisper-vi-en --set 'source_languages=[vi]' \\
        --set 'train_manifests=[data/st/train.jsonl]' --set 'val_manifests=[data/st/val.jsonl]'

A MultiMed-ST-style manifest is a NeMo JSONL manifest whose ``text`` is the transcript in the
spoken language ``lang`` and whose translations sit in keys ``translation_<lang>``
(``translation_en``). Whisper's ``translate`` task only produces English, so an English target
is trained as ``<|src|><|translate|>``; any other target as ``<|tgt|><|transcribe|>`` (the
target language token with the transcribe task), and decoded the same way.

Steps: 1. the manifests: read and checked (:mod:`recipes.manifests`), or built from a folder of
parallel recordings (``parallel_from``, e.g. asterisk_prompts: the same prompt ids recorded in
several languages), written to ``OUTPUT/manifests``; 2. load the model (or build a tiny random
Whisper), SpecAugment, optional encoder freezing; 3. train with ``Seq2SeqTrainer``;
4. export ``OUTPUT/model-hf`` and the CTranslate2 ``OUTPUT/model``; 5. translate the
validation set with the exported model, the cascade (``cascade_asr`` then ``cascade_mt``) and
``reference_model``'s speech translation, and score each with sacrebleu (``eval.translation``)
into ``OUTPUT/report.json`` and ``report.md``.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from eval.translation import score_translations
from eval.wer import error_rate
from recipes.config import repo_path, start
from recipes.manifests import Entry, read_manifest
from recipes.whisper_common import (
    Example,
    TrainResult,
    WhisperRecipeConfig,
    build_model,
    check,
    checked_entries,
    dataset,
    decode,
    export,
    run_lines,
    train,
    write_report,
    write_split,
)
from speech.types import Task

logger = logging.getLogger("recipes.st_whisper")

MtFunction = Callable[[Sequence[str], str, str], list[str]]
"""(texts, source language, target language) → translations."""


@dataclass(frozen=True)
class StConfig(WhisperRecipeConfig):
    """Every setting of a run (the YAML keys); recorded in ``report.json``."""

    source_languages: tuple[str, ...] = ("es", "fr")
    target_language: str = "en"
    train_manifests: tuple[str, ...] = ()
    val_manifests: tuple[str, ...] = ()
    parallel_from: str | None = None
    """A manifest of the same prompts recorded in several languages (``lang`` and
    ``prompt_id`` keys, like asterisk_prompts): the data step pairs each source recording with
    the target-language text of its prompt, instead of reading train/val_manifests."""
    val_prompts: int = 4
    """With ``parallel_from``: prompts held out for validation (all their recordings)."""
    cascade_asr: str | None = "base"
    """The cascade's ASR: a medstream model name or directory (None: no cascade)."""
    cascade_mt: str | None = None
    """The cascade's MT: a directory, catalog name or Hub id for ``translate.catalog.load_mt``
    (None: only the cascade's ASR runs, and its WER is reported)."""
    reference_model: str | None = "base"
    """A Whisper whose own speech translation (task=translate) is scored as a reference
    system; English targets only."""

    @property
    def translation_key(self) -> str:
        return f"translation_{self.target_language}"


def prompt(source: str, target: str) -> tuple[str, Task]:
    """The language token and task that make Whisper produce ``target`` from ``source``
    speech: ``translate`` only yields English, other targets use ``transcribe`` with the
    target's token."""
    return (source, "translate") if target == "en" else (target, "transcribe")


def pair_prompts(manifest: Path, sources: Sequence[str], target: str
                 ) -> tuple[list[Entry], list[str]]:
    """MultiMed-ST-style entries from parallel recordings: every recording in ``sources``
    whose ``prompt_id`` also has a ``target`` recording gets that recording's text as
    ``translation_<target>``. Also returns the recordings left without a pair."""
    entries, bad = read_manifest(manifest)
    problems = [p.reason for p in bad]
    targets = {e.extra.get("prompt_id"): e.text for e in entries if e.lang == target}
    paired = []
    for entry in entries:
        if entry.lang not in sources:
            continue
        translation = targets.get(entry.extra.get("prompt_id"))
        if translation is None:
            problems.append(f"{entry.audio_filepath}: no {target} text for prompt "
                            f"{entry.extra.get('prompt_id')!r}")
            continue
        paired.append(Entry(entry.audio_filepath, entry.duration, entry.text, entry.lang,
                            {**entry.extra, f"translation_{target}": translation}))
    return paired, problems


def prepare(config: StConfig, output: Path) -> tuple[dict[str, list[Entry]], dict[str, Any]]:
    """Checked MultiMed-ST-style entries per split, written to OUTPUT/manifests."""
    if config.parallel_from is not None:
        paired, problems = pair_prompts(repo_path(config.parallel_from),
                                        config.source_languages, config.target_language)
        good, checked = check(paired, config)
        prompts = sorted({str(e.extra.get("prompt_id")) for e in good})
        if not 0 < config.val_prompts < len(prompts):
            raise SystemExit(f"val_prompts must be between 1 and {len(prompts) - 1} (there "
                             f"are {len(prompts)} paired prompts), not {config.val_prompts}")
        held_out = set(random.Random(config.seed).sample(prompts, config.val_prompts))
        found = {"train": [e for e in good if str(e.extra.get("prompt_id")) not in held_out],
                 "val": [e for e in good if str(e.extra.get("prompt_id")) in held_out]}
        issues = {"train": problems + checked, "val": []}
    else:
        found, issues = {}, {}
        for split, sources in (("train", config.train_manifests),
                               ("val", config.val_manifests)):
            if not sources:
                raise SystemExit(f"no {split}_manifests (and no parallel_from) in the config")
            entries, problems = checked_entries(sources, config.source_languages, config)
            lacking = [e for e in entries if not e.extra.get(config.translation_key)]
            found[split] = [e for e in entries if e.extra.get(config.translation_key)]
            issues[split] = problems + [f"{e.audio_filepath}: no {config.translation_key}"
                                        for e in lacking]
    summary = {split: write_split(found[split], issues[split], output, split)
               for split in ("train", "val")}
    return found, summary


def examples(entries: list[Entry], config: StConfig) -> list[Example]:
    return [Example(e.audio_filepath, str(e.extra[config.translation_key]),
                    *prompt(e.lang, config.target_language)) for e in entries]


def per_language(languages: Sequence[str], run: Callable[[list[int], str], list[str]]
                 ) -> list[str]:
    """``run(indices, language)`` once per language (a decode or MT call takes one), the
    results put back in the order of ``languages``."""
    results = [""] * len(languages)
    for language in sorted(set(languages)):
        chosen = [i for i, lang in enumerate(languages) if lang == language]
        for index, text in zip(chosen, run(chosen, language), strict=True):
            results[index] = text
    return results


def cascade(languages: Sequence[str], transcripts: Sequence[str], mt: MtFunction,
            target: str) -> list[str]:
    """The cascade's second half: each ASR transcript translated from its own language."""
    return per_language(languages, lambda chosen, language: mt(
        [transcripts[i] for i in chosen], language, target))


def mt_function(name: str) -> MtFunction:
    """medstream's MT (``translate.catalog.load_mt``) as a plain function."""
    from translate.catalog import load_mt
    from translate.translator import Translator

    translator = Translator(load_mt(name))

    def run(texts: Sequence[str], source: str, target: str) -> list[str]:
        return [t.text for t in translator.translate(list(texts), source, target)]

    return run


def system_row(name: str, hypotheses: Sequence[str], entries: Sequence[Entry],
               config: StConfig) -> dict[str, Any]:
    references = [str(e.extra[config.translation_key]) for e in entries]
    bleu, chrf = score_translations(hypotheses, references, config.target_language,
                                    metrics=("bleu", "chrf"), n_bootstrap=1)
    return {"system": name, "bleu": bleu.score, "chrf": chrf.score, "segments": len(entries),
            "signatures": {"bleu": bleu.signature, "chrf": chrf.signature},
            "examples": [{"source": e.text, "reference": r, "hypothesis": h}
                         for e, r, h in list(zip(entries, references, hypotheses,
                                                 strict=True))[:3]]}


def evaluate(config: StConfig, model: Path, entries: list[Entry]) -> dict[str, Any]:
    """BLEU/chrF of every system on the validation set, and the cascade ASR's WER."""
    chosen = entries[: config.eval_utterances] if config.eval_utterances else entries
    target = config.target_language

    languages = [e.lang for e in chosen]

    def speech_to_text(name: str | Path, task_for: Callable[[str], tuple[str, Task]]
                       ) -> list[str]:
        return per_language(languages, lambda indices, language: decode(
            name, [chosen[i].audio_filepath for i in indices], *task_for(language), config))

    rows = [system_row("end-to-end (this model)",
                       speech_to_text(model, lambda language: prompt(language, target)),
                       chosen, config)]
    asr: dict[str, Any] = {}
    if config.cascade_asr is not None:
        transcripts = speech_to_text(config.cascade_asr,
                                     lambda language: (language, "transcribe"))
        for language in sorted({e.lang for e in chosen}):
            pairs = [(e.text, t) for e, t in zip(chosen, transcripts, strict=True)
                     if e.lang == language]
            score = error_rate([r for r, _ in pairs], [h for _, h in pairs], language=language)
            asr[language] = {"wer": score.score, "signature": score.signature,
                             "utterances": len(pairs)}
        if config.cascade_mt is not None:
            translations = cascade(languages, transcripts, mt_function(config.cascade_mt),
                                   target)
            rows.append(system_row(f"cascade: {config.cascade_asr} → {config.cascade_mt}",
                                   translations, chosen, config))
    if config.reference_model is not None and target == "en":
        rows.append(system_row(
            f"reference: {config.reference_model} speech translation",
            speech_to_text(config.reference_model, lambda language: (language, "translate")),
            chosen, config))
    return {"systems": rows, "cascade_asr_wer": asr}


def report(output: Path, config: StConfig, data: dict[str, Any], trained: TrainResult,
           scores: dict[str, Any]) -> None:
    losses = trained.summary()
    result = {"config": asdict(config), "data": data, **losses, **scores,
              "model": str(output / "model")}
    pair = f"{'+'.join(config.source_languages)}→{config.target_language}"
    prompt_tokens = ("<|source language|><|translate|>" if config.target_language == "en"
                     else f"<|{config.target_language}|><|transcribe|>")
    lines = [f"# st_whisper run ({pair})", "", *run_lines(config, data, losses),
             f"Targets trained and decoded as `{prompt_tokens}`. Systems, on the same "
             "validation segments: the end-to-end model trained here; the cascade, "
             f"`cascade_asr` ({config.cascade_asr or 'not set'}) then `cascade_mt` "
             f"({config.cascade_mt or 'not set'}); "
             f"`reference_model` ({config.reference_model or 'not set'}) translating speech "
             "itself.", "",
             "| system | BLEU | chrF | segments |", "|---|---|---|---|"]
    lines += [f"| {r['system']} | {r['bleu']:.1f} | {r['chrf']:.1f} | {r['segments']} |"
              for r in scores["systems"]]
    lines += ["", f"BLEU: `{scores['systems'][0]['signatures']['bleu']}`; chrF: "
              f"`{scores['systems'][0]['signatures']['chrf']}`."]
    if scores["cascade_asr_wer"]:
        lines += ["", f"Cascade ASR ({config.cascade_asr}) WER on the source transcripts: "
                  + ", ".join(f"{lang} {v['wer']:.1f} % ({v['utterances']} utterances)"
                              for lang, v in scores["cascade_asr_wer"].items()) + "."]
    if config.cascade_mt is None:
        lines += ["", "No cascade row: no MT model was configured (`cascade_mt`); no "
                  f"{pair} MT model ships with medstream."]
    write_report(output, result, lines)


def main(argv: list[str] | None = None) -> None:
    config, output = start(argv, StConfig, __doc__)
    splits, data = prepare(config, output)
    model, processor = build_model(config)
    trained = train(model, processor, dataset(examples(splits["train"], config), processor, config),
                    dataset(examples(splits["val"], config), processor, config), config, output)
    path = export(model, processor, output, "model", config.export_quantization)
    report(output, config, data, trained, evaluate(config, path, splits["val"]))


if __name__ == "__main__":
    main()
