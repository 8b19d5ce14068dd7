"""Train an MT model (de→en by default, or any pair from your own parallel text) to apply
terminology from inline annotations (Dinu et al. 2019), export it to CTranslate2 and score it
with and without annotations.

Usage (from the repository root; see recipes/mt/README.md):

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python recipes/mt/train.py \\
        --config recipes/mt/conf/tiny.yaml --output runs/mt-tiny
    .venv/bin/python recipes/mt/train.py --config recipes/mt/conf/full.yaml \\
        --output runs/mt-nllb --set init_from=/models/nllb-200-distilled-600M
    OMP_WAIT_POLICY=PASSIVE .venv/bin/python recipes/mt/train.py \\
        --config recipes/mt/conf/tiny_fr_en.yaml --output runs/mt-tiny-fr-en

Steps: 1. read the config; 2. split the parallel text: without ``train_files``, the shared
de→en medical data (:func:`recipes.mt.tiny_marian.train_dev_split`: WMT23 terminology de-en
minus its last ``dev_segments`` segments, plus the WMT18 Medline de↔en sets); with
``train_files`` (TSV or JSONL, :mod:`recipes.mt.parallel`), those pairs for ``source_language``
→ ``target_language``, the dev set being ``dev_file`` or their last ``dev_segments`` distinct
pairs, held out; 3. find each training pair's term pairs (its WMT23 dictionaries, and glossary
matches whose target the reference uses) and annotate each with ``annotate_prob``
(:mod:`recipes.mt.terms`), written to ``OUTPUT/data/train.jsonl``; 4. build the model: from
scratch (SentencePiece with the markers as user symbols, a small Marian) or ``init_from`` a
Marian/NLLB/M2M100 model with the markers added (:mod:`recipes.mt.vocabulary`); 5. train;
6. export ``OUTPUT/hf`` and the CTranslate2 model ``OUTPUT/ct2`` with the tokenizer and
``medstream_mt.json`` (which tells medstream the model reads annotations, and its language
pair); 7. translate the first ``eval_segments`` dev segments with medstream's Translator loaded
from ``OUTPUT/ct2``, without and with annotations, free and in hard mode, and write BLEU, chrF
and term success (WMT23 proper terms; with ``train_files``, the glossary terms found in each
dev pair) to ``OUTPUT/report.json`` and ``report.md``.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections import Counter
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from eval.readers import TermPair, read_terminology_jsonl
from eval.terms import TermSuccess, dictionary
from eval.translation import TranslationMetric
from recipes.config import repo_path, start
from recipes.mt.parallel import primary, read_parallel_file, split_pairs
from recipes.mt.terms import (
    AnnotatedPair,
    annotate_pairs,
    find_terms,
    oriented_glossary,
)
from recipes.mt.tiny_marian import (
    SOURCE_LANGUAGE,
    TARGET_LANGUAGE,
    WMT23_FILE,
    DataSplit,
    ParallelPair,
    TinyMarianConfig,
    convert,
    encode_pairs,
    new_model,
    parameter_count,
    read_wmt23,
    train,
    train_dev_split,
    train_sentencepiece,
    write_tokenizer,
)
from speech.errors import DataFileError
from translate.annotation import METADATA_FILE, TermAnnotation
from translate.glossary import Glossary

logger = logging.getLogger("recipes.mt")

SYSTEMS: dict[str, tuple[str, bool]] = {
    "plain": ("none", False),
    "annotated": ("none", True),
    "hard": ("hard", False),
    "annotated+hard": ("hard", True),
}
"""Report rows: (term mode, annotate) — see translate.types.TranslateOptions."""


@dataclass(frozen=True)
class RecipeConfig:
    """Every setting of a run (the YAML keys); recorded in ``report.json``."""

    data_dir: str = "../shared/data/mt"
    """The shared de→en data (WMT23 terminology, WMT18 Medline), used when ``train_files`` is
    empty."""
    source_language: str = SOURCE_LANGUAGE
    target_language: str = TARGET_LANGUAGE
    """The language pair (ISO 639-1); anything but de→en needs ``train_files``."""
    train_files: tuple[str, ...] = ()
    """Your own parallel text: TSV or JSONL files (relative to the repo; formats in
    :mod:`recipes.mt.parallel` and recipes/mt/README.md). Empty: the shared de→en data."""
    dev_file: str | None = None
    """With ``train_files``: the dev set, in the same formats (None: the last
    ``dev_segments`` distinct pairs of ``train_files``, held out)."""
    glossaries: tuple[str, ...] = ("../shared/data/terms/tico19_terms.en-de_fr_es_vi_zh.tsv",)
    """Glossaries matched in the training sources (either direction; relative to the repo);
    with ``train_files`` they are the only source of term pairs, in training and evaluation."""
    segment_terms: tuple[str, ...] = ("terms_proper", "terms_random")
    """Which WMT23 dictionaries of a training segment are term pairs for it (shared data)."""
    dev_segments: int = 500
    """Held out from the end of the training data (not used with ``dev_file``)."""
    train_pairs: int | None = None
    """A seeded sample of this many training pairs (None: all)."""
    term_pair_examples: bool = False
    """Also train on the training segments' term pairs as short sentence pairs, annotated
    like the rest ("Hypertonie <t> hypertension </t>" → "hypertension"): a cheap lesson in
    copying the annotation for a small model trained briefly. With ``train_files``: the
    distinct glossary term pairs found in the training pairs."""
    annotate_prob: float = 0.7
    """Chance that a found term is annotated in the training source."""
    markers: tuple[str, ...] = ("<t>", "</t>")
    init_from: str | None = None
    """A transformers Marian/NLLB/M2M100 directory, catalog name or hub id to fine-tune
    (None: a small Marian from scratch with the sizes below)."""
    vocab_size: int = 4000
    d_model: int = 128
    encoder_layers: int = 2
    decoder_layers: int = 2
    heads: int = 4
    ffn_dim: int = 512
    dropout: float = 0.0
    """From scratch only (a pretrained model keeps its own)."""
    max_steps: int = 300
    batch_size: int = 32
    learning_rate: float = 3e-3
    warmup_steps: int = 40
    label_smoothing: float = 0.1
    weight_decay: float = 0.01
    clip_norm: float = 1.0
    max_length: int = 128
    seed: int = 1234
    threads: int = 2
    device: str = "cpu"
    log_every: int = 25
    quantization: str | None = None
    """CTranslate2 weights on disk (None: as trained; int8, int8_float16, float16)."""
    eval_segments: int | None = 100
    """The first this many dev segments are translated (None: all)."""
    eval_device: str = "cpu"
    beam_size: int = 2
    n_bootstrap: int = 1
    """sacrebleu bootstrap resamples for confidence intervals (1: none)."""


def training_config(config: RecipeConfig) -> TinyMarianConfig:
    """The model and schedule settings as :mod:`recipes.mt.tiny_marian` takes them."""
    names = {f.name for f in fields(TinyMarianConfig)} & {f.name for f in fields(RecipeConfig)}
    return TinyMarianConfig(**{name: getattr(config, name) for name in names})


# ---------------------------------------------------------------------------------- data


def check_languages(config: RecipeConfig) -> None:
    """Refuse a config whose data cannot serve its language pair."""
    pair = (config.source_language, config.target_language)
    if primary(pair[0]) == primary(pair[1]):
        raise SystemExit(f"source_language and target_language are both {pair[0]!r}")
    if not config.train_files:
        if pair != (SOURCE_LANGUAGE, TARGET_LANGUAGE):
            raise SystemExit(f"{pair[0]}→{pair[1]}: the shared data in data_dir is "
                             f"{SOURCE_LANGUAGE}→{TARGET_LANGUAGE} only; give your parallel "
                             "text as train_files (see recipes/mt/README.md)")
        if config.dev_file is not None:
            raise SystemExit("dev_file goes with train_files (the shared data holds out its "
                             "own dev set: dev_segments)")


def split_data(config: RecipeConfig) -> DataSplit:
    """Training pairs and the dev set: the shared de→en data, or ``train_files``."""
    if not config.train_files:
        return train_dev_split(repo_path(config.data_dir), config.dev_segments)
    languages = (config.source_language, config.target_language)
    try:
        pairs = [pair for name in config.train_files
                 for pair in read_parallel_file(repo_path(name), *languages)]
        dev = (read_parallel_file(repo_path(config.dev_file), *languages)
               if config.dev_file is not None else None)
        return split_pairs(pairs, dev, config.dev_segments, ", ".join(config.train_files))
    except (DataFileError, ValueError) as error:
        raise SystemExit(str(error)) from None


def load_glossary(config: RecipeConfig) -> Glossary | None:
    """The ``glossaries`` turned for ``source_language`` → ``target_language`` (None: none)."""
    if not config.glossaries:
        return None
    return oriented_glossary([repo_path(p) for p in config.glossaries], config.source_language,
                             config.target_language)


def training_data(config: RecipeConfig, split: DataSplit, glossary: Glossary | None,
                  output: Path) -> tuple[list[AnnotatedPair], dict[str, Any]]:
    """Annotated training pairs and counts for the report."""
    src, tgt = config.source_language, config.target_language
    pairs = list(split.train)
    if config.train_pairs is not None and config.train_pairs < len(pairs):
        pairs = random.Random(config.seed).sample(pairs, config.train_pairs)
    segment_terms: dict[str, list[tuple[str, str]]] = {}
    if not config.train_files:
        segment_terms = {
            f"wmt23:{row['id']}": [(str(t[src]), str(t[tgt]))
                                   for key in config.segment_terms for t in row.get(key, ())]
            for row in read_wmt23(repo_path(config.data_dir) / WMT23_FILE)}
    if config.term_pair_examples:
        pairs += split.train_terms
        for term in split.train_terms:
            segment_terms.setdefault(term.origin, []).append((term.source, term.target))
    annotated = annotate_pairs(pairs, segment_terms, glossary, config.annotate_prob,
                               config.markers, src, tgt, config.seed)
    if config.term_pair_examples and config.train_files:
        annotated += term_examples(annotated, config)
    folder = output / "data"
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "train.jsonl").open("w", encoding="utf-8") as handle:
        for item in annotated:
            handle.write(json.dumps({
                "origin": item.pair.origin, "src": item.pair.source, "ref": item.pair.target,
                "src_annotated": item.source,
                "terms": [{"source": t.source, "target": t.target, "origin": t.origin,
                           "annotated": t in item.annotated} for t in item.terms]},
                ensure_ascii=False) + "\n")
    found = Counter(t.origin for item in annotated for t in item.terms)
    summary = {"train_pairs": len(annotated), "dev_segments": len(split.dev),
               "pairs_with_terms": sum(bool(item.terms) for item in annotated),
               "terms_found": dict(found),
               "terms_annotated": sum(len(item.annotated) for item in annotated),
               "pairs_annotated": sum(bool(item.annotated) for item in annotated),
               "glossary_entries": len(glossary) if glossary is not None else 0}
    logger.info("data: %s", summary)
    return annotated, summary


def term_examples(annotated: list[AnnotatedPair], config: RecipeConfig) -> list[AnnotatedPair]:
    """The distinct term pairs found in ``annotated`` as short training pairs, annotated with
    ``annotate_prob`` like the rest (``term_pair_examples`` with ``train_files``)."""
    distinct = dict.fromkeys((t.source, t.target) for item in annotated for t in item.terms)
    pairs = [ParallelPair(source, target, f"glossary-term:{index}")
             for index, (source, target) in enumerate(distinct)]
    return annotate_pairs(pairs, {p.origin: [(p.source, p.target)] for p in pairs}, None,
                          config.annotate_prob, config.markers, config.source_language,
                          config.target_language, config.seed + 1)


# ---------------------------------------------------------------------------------- model


def build(config: RecipeConfig, annotated: list[AnnotatedPair],
          hf_dir: Path) -> tuple[Any, Any]:
    """``(model, tokenizer)``: from scratch, or ``init_from`` with the markers added."""
    if config.init_from is None:
        spm_file = hf_dir.parent / "joint.spm"
        texts = [a.source for a in annotated] + [a.pair.target for a in annotated]
        train_sentencepiece(texts, spm_file, config.vocab_size, config.seed, config.markers)
        tokenizer = write_tokenizer(spm_file, hf_dir, config.source_language,
                                    config.target_language)
        return new_model(training_config(config), len(tokenizer.get_vocab())), tokenizer
    from recipes.mt.vocabulary import load_with_markers
    from translate.catalog import resolve_mt_model
    from translate.tokenization import ModelTokenizer

    resolved = resolve_mt_model(config.init_from)
    if resolved.format != "transformers":
        raise SystemExit(f"init_from {config.init_from}: a transformers model is needed to "
                         "fine-tune, not a CTranslate2 conversion")
    model, tokenizer = load_with_markers(resolved.path, config.markers, hf_dir, config.seed)
    languages = ModelTokenizer(tokenizer)
    if languages.family != "marian":
        tokenizer.src_lang = languages.language_code(config.source_language)
        tokenizer.tgt_lang = languages.language_code(config.target_language)
    return model, tokenizer


def export(model: Any, tokenizer: Any, config: RecipeConfig, hf_dir: Path, ct2_dir: Path,
           metadata: dict[str, Any]) -> None:
    """The transformers model in ``hf_dir``, its CTranslate2 conversion in ``ct2_dir`` (with
    the tokenizer files), ``medstream_mt.json`` in both."""
    model.to("cpu")
    model.save_pretrained(str(hf_dir))
    tokenizer.save_pretrained(str(hf_dir))
    convert(hf_dir, ct2_dir, config.quantization)
    text = json.dumps(metadata, indent=2, ensure_ascii=False) + "\n"
    for folder in (hf_dir, ct2_dir):
        (folder / METADATA_FILE).write_text(text, encoding="utf-8")


# ---------------------------------------------------------------------------------- evaluation


@dataclass(frozen=True)
class DevSegment:
    """A dev pair as scored: its term pairs are what term success checks."""

    id: str
    source: str
    reference: str
    terms: tuple[TermPair, ...]


def dev_set(config: RecipeConfig, split: DataSplit,
            glossary: Glossary | None) -> list[DevSegment]:
    """The first ``eval_segments`` dev segments with their term pairs: the WMT23 proper terms
    (shared data) or, with ``train_files``, the glossary terms found in the source whose
    target the reference uses (found as for training pairs)."""
    if not config.train_files:
        rows = read_terminology_jsonl(repo_path(config.data_dir) / WMT23_FILE)
        rows = rows[-config.dev_segments:][:config.eval_segments]
        return [DevSegment(s.id, s.src, s.ref, dictionary(s, "proper")) for s in rows]
    segments = []
    for pair in split.dev[:config.eval_segments]:
        found = find_terms(pair, (), glossary, config.source_language, config.target_language)
        segments.append(DevSegment(pair.origin, pair.source, pair.target,
                                   tuple(TermPair(t.source, t.target) for t in found)))
    return segments


def describe_dev(config: RecipeConfig) -> str:
    """What the evaluated segments and their term pairs are, for ``report.md``."""
    terms = "the glossary terms found in each source whose target the reference uses"
    if not config.train_files:
        where, terms = "held-out WMT23 terminology segments", "the proper-terms dictionary"
    elif config.dev_file is not None:
        where = f"pairs of {config.dev_file}"
    else:
        where = f"held-out pairs (the last {config.dev_segments} of train_files)"
    return (f"{where}, translated by medstream's Translator from the CTranslate2 export; term "
            f"success against {terms}")


def evaluate(config: RecipeConfig, ct2_dir: Path, segments: list[DevSegment]) -> dict[str, Any]:
    """Each system of :data:`SYSTEMS` on the dev ``segments``."""
    from translate.catalog import load_mt
    from translate.constraints import pair_constraints
    from translate.translator import Terminology, Translator
    from translate.types import TranslateOptions

    src, tgt = config.source_language, config.target_language
    backend = load_mt(str(ct2_dir), device=config.eval_device, allow_download=False)
    if backend.annotation is None:
        raise SystemExit(f"{ct2_dir}: the exported model does not announce term annotation")
    translator = Translator(backend, Terminology(numbers=False))
    texts = [s.source for s in segments]
    references = [s.reference for s in segments]
    proper = [s.terms for s in segments]
    terms = [pair_constraints(s.source, [(p.source, p.target) for p in s.terms], src)
             for s in segments]
    metrics = [TranslationMetric(name, tgt, config.n_bootstrap) for name in ("bleu", "chrf")]
    success = {"exact": TermSuccess("proper", tgt),
               "lenient": TermSuccess("proper", tgt, lenient=True)}
    if not any(proper):
        logger.warning("no term pair in the %d dev segments evaluated: term success is not "
                       "reported (add a glossary that covers them)", len(segments))
        success = {}
    rows: list[dict[str, Any]] = []
    for name, (mode, annotate) in SYSTEMS.items():
        options = TranslateOptions(terms="hard" if mode == "hard" else "none",
                                   annotate=annotate, beam_size=config.beam_size)
        began = time.perf_counter()
        outputs = translator.translate(texts, src, tgt, options, terms)
        seconds = time.perf_counter() - began
        hypotheses = [o.text for o in outputs]
        scores = {m.name: m.corpus_score(hypotheses, references) for m in metrics}
        terms_scored = {k: m.corpus_score(hypotheses, proper) for k, m in success.items()}
        rows.append({
            "system": name, "terms": mode, "annotate": annotate, "seconds": round(seconds, 2),
            "bleu": scores["BLEU"].score, "chrf": scores["chrF2"].score,
            "term_success": terms_scored["exact"].score if success else None,
            "term_success_lenient": terms_scored["lenient"].score if success else None,
            "terms_checked": terms_scored["exact"].details["total"] if success else 0,
            "markers_in_output": sum(any(m in h for m in backend.annotation.markers)
                                     for h in hypotheses),
            "examples": [{"source": t, "reference": r, "hypothesis": h}
                         for t, r, h in list(zip(texts, references, hypotheses,
                                                 strict=True))[:3]]})
        logger.info("%s: BLEU %.2f chrF %.2f term success %s", name, rows[-1]["bleu"],
                    rows[-1]["chrf"], _percent(rows[-1]["term_success"]))
    signatures = {**{m.name: m.signature() for m in metrics},
                  **{f"term_success_{k}": m.signature() for k, m in success.items()}}
    return {"segments": len(segments), "first_id": segments[0].id, "model": backend.identifier,
            "signatures": signatures, "systems": rows}


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}"


# ---------------------------------------------------------------------------------- report


def report(output: Path, config: RecipeConfig, data: dict[str, Any], training: dict[str, Any],
           scores: dict[str, Any], dev: str) -> None:
    """``report.json`` (everything) and ``report.md`` (the table); ``dev`` says what the
    dev set and its term pairs are."""
    result = {"config": asdict(config), "data": data, "training": training,
              "evaluation": scores, "model": str(output / "ct2")}
    (output / "report.json").write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n",
                                        encoding="utf-8")
    model = config.init_from or f"Marian from scratch ({training['parameters']:,} parameters)"
    lines = [
        "# mt recipe: terminology by inline annotation "
        f"({config.source_language}→{config.target_language})", "",
        f"Model: {model}. Data: {data['train_pairs']} training pairs, "
        f"{data['pairs_with_terms']} with terms ({data['terms_found']}), "
        f"{data['terms_annotated']} terms annotated in {data['pairs_annotated']} pairs.", "",
        f"Training: {training['steps']} steps in {training['seconds']:.0f} s; loss "
        f"{training['loss_first']:.2f} → {training['loss_last']:.2f} (means of the first and "
        "last logging windows).", "",
        f"Evaluation: the first {scores['segments']} {dev}.", "",
        "| system | terms mode | annotated source | BLEU | chrF | term success (%) | "
        "lenient (%) |", "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['system']} | {r['terms']} | {'yes' if r['annotate'] else 'no'} | "
              f"{r['bleu']:.2f} | {r['chrf']:.2f} | {_percent(r['term_success'])} | "
              f"{_percent(r['term_success_lenient'])} |" for r in scores["systems"]]
    lines += ["", "Signatures:", ""]
    lines += [f"- {name}: `{signature}`" for name, signature in scores["signatures"].items()]
    (output / "report.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


def main(argv: list[str] | None = None) -> None:
    # 1. Config.
    config, output = start(argv, RecipeConfig, __doc__)
    check_languages(config)
    if len(config.markers) != 2:
        raise SystemExit(f"markers: give two (opening, closing), not {config.markers}")
    annotation = TermAnnotation(markers=(config.markers[0], config.markers[1]))
    hf_dir, ct2_dir = output / "hf", output / "ct2"

    # 2–3. Data and annotations.
    split = split_data(config)
    glossary = load_glossary(config)
    annotated, data = training_data(config, split, glossary, output)

    # 4. Model and tokenizer.
    model, tokenizer = build(config, annotated, hf_dir)
    examples = encode_pairs(tokenizer, [ParallelPair(a.source, a.pair.target, a.pair.origin)
                                        for a in annotated], config.max_length)

    # 5. Train.
    schedule = training_config(config)
    began = time.perf_counter()
    losses = train(model, examples, schedule)
    seconds = time.perf_counter() - began
    window = max(1, min(config.log_every, len(losses) // 2))
    training: dict[str, Any] = {
        "steps": len(losses), "seconds": round(seconds, 1),
        "loss_first": sum(losses[:window]) / window, "loss_last": sum(losses[-window:]) / window,
        "parameters": parameter_count(model), "losses": losses}

    # 6. Export.
    metadata = {**annotation.metadata(), "architecture": model.config.model_type,
                "builder": "recipes/mt/train.py", "init_from": config.init_from,
                "source_language": config.source_language,
                "target_language": config.target_language,
                "training_data": {**{k: data[k] for k in ("train_pairs", "terms_annotated")},
                                  "files": list(config.train_files) or [config.data_dir]},
                "steps": len(losses), "final_loss": round(training["loss_last"], 4)}
    export(model, tokenizer, config, hf_dir, ct2_dir, metadata)

    # 7. Evaluate the export the way the pipeline loads it, and report.
    scores = evaluate(config, ct2_dir, dev_set(config, split, glossary))
    report(output, config, data, training, scores, describe_dev(config))


if __name__ == "__main__":
    main()
