"""``medstream eval``: score a stage (asr, mt, ner, terms) or the pipeline; compare two reports.

Every command writes a report folder (``report.json``, ``report.md``, PNG plots) and prints
the markdown summary. Input problems (a missing file, a hypothesis file of the wrong length, a
transcript that is not there) stop the command with a clear message and exit status 2.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import Progress

from eval.asr_entities import TaggedText
from eval.readers import (
    ManifestEntry,
    TaggedSentence,
    read_conll,
    read_glossary_tsv,
    read_manifest,
    read_parallel_tsv,
    read_terminology_jsonl,
)
from eval.report import (
    Report,
    Section,
    compare_reports,
    render_comparison,
    render_markdown,
)
from eval.sections import (
    asr_entity_section,
    asr_section,
    mt_section,
    ner_section,
    terms_section,
)
from eval.terms import MODES
from ner.catalog import DEFAULT_NER_MODEL
from speech.errors import MedstreamError

eval_app = typer.Typer(help="Measure a stage or the whole pipeline; compare two reports.",
                       no_args_is_help=True)
stderr = Console(stderr=True)
EXIT_USAGE = 2

OutOption = Annotated[Path, typer.Option("--out", "-o", help="Report folder to write.")]


class UsageError(Exception):
    """Bad input for an eval command: reported in one line, exit status 2."""


def _fail(message: str) -> typer.Exit:
    stderr.print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(EXIT_USAGE)


def _build(title: str, out: Path, build: Callable[[], tuple[list[Section], dict[str, str]]]
           ) -> None:
    """Run ``build`` (sections and report metadata), then write and print the report."""
    try:
        sections, meta = build()
    except (UsageError, MedstreamError, ValueError) as error:
        raise _fail(str(error)) from None
    report = Report.new(title, **meta)
    report.sections.extend(sections)
    written = report.write(out)
    typer.echo(render_markdown(report))
    stderr.print(f"wrote {', '.join(p.name for p in written)} to {out}", highlight=False)


def _lines(path: Path, expected: int, what: str) -> list[str]:
    """A hypothesis file: one output per line, as many lines as there are segments."""
    try:
        lines = path.read_text(encoding="utf-8").split("\n")
    except OSError as error:
        raise UsageError(f"cannot read {what} {path}: {error.strerror}") from error
    if lines and lines[-1] == "":
        lines.pop()
    if len(lines) != expected:
        raise UsageError(f"{what} {path} has {len(lines)} lines but the test set has "
                         f"{expected} segments (one output per line, in order)")
    return lines


@dataclass(frozen=True)
class Utterance:
    """A manifest entry with its corpus (the manifest's folder) and a readable id."""

    entry: ManifestEntry
    corpus: str
    id: str


def _manifests(paths: Sequence[Path]) -> list[Utterance]:
    utterances: list[Utterance] = []
    for path in paths:
        files = sorted(path.rglob("manifest.jsonl")) if path.is_dir() else [path]
        if not files:
            raise UsageError(f"no manifest.jsonl under {path}")
        for file in files:
            corpus = file.parent.name
            for entry in read_manifest(file):
                audio = entry.audio_filepath
                relative = audio.relative_to(file.parent) if audio.is_relative_to(file.parent) \
                    else Path(audio.name)
                utterances.append(Utterance(entry, corpus, f"{corpus}/{relative.as_posix()}"))
    if not utterances:
        raise UsageError("the manifests hold no utterance")
    return utterances


def _glossary_terms(path: Path | None) -> dict[str, list[str]]:
    """Terms per language: source terms in their language and target terms in theirs."""
    if path is None:
        return {}
    terms: dict[str, set[str]] = defaultdict(set)
    for entry in read_glossary_tsv(path):
        if entry.src_lang:
            terms[entry.src_lang.split("-")[0]].add(entry.source)
        if entry.tgt_lang:
            terms[entry.tgt_lang.split("-")[0]].add(entry.target)
    return {language: sorted(values) for language, values in terms.items()}


def _transcripts_for(entries: Sequence[ManifestEntry], folder: Path) -> tuple[list[str], str]:
    """The batch CLI's json transcripts of ``entries`` (matched by the audio's content), and
    the models that wrote them."""
    from streaming.document import SourceFile, TranscriptDocument

    by_digest: dict[str, TranscriptDocument] = {}
    for file in folder.rglob("*.json"):
        try:
            document = TranscriptDocument.from_json(file.read_text(encoding="utf-8"))
        except (ValueError, KeyError, OSError):
            continue
        by_digest[document.source.sha256] = document
    texts: list[str] = []
    missing: list[str] = []
    models: set[str] = set()
    for entry in entries:
        if not entry.audio_filepath.is_file():
            raise UsageError(f"audio file {entry.audio_filepath} (in a manifest) is missing")
        found = by_digest.get(SourceFile.of(entry.audio_filepath).sha256)
        if found is None:
            missing.append(str(entry.audio_filepath))
        else:
            models.add(found.info.model)
        texts.append(found.text if found else "")
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5
                                          else "")
        raise UsageError(f"{len(missing)} of {len(entries)} recordings have no transcript in "
                         f"{folder}: {shown}. Run `medstream transcribe` on them first.")
    return texts, "; ".join(sorted(models))


def _transcribe(utterances: Sequence[Utterance], model: str, device: str,
                section_notes: list[str]) -> tuple[list[str], str]:
    """Run the recogniser over every entry; a recording that fails is noted and scored empty."""
    from speech.audio import load_audio
    from speech.loader import load_asr
    from speech.options import Device, ModelOptions, TranscribeOptions

    device_choice: Device = "cpu" if device == "cpu" else "cuda" if device == "cuda" else "auto"
    backend = load_asr(model, ModelOptions(device=device_choice), allow_download=False)
    texts = []
    with Progress(console=stderr, transient=True) as progress:
        task = progress.add_task("transcribing", total=len(utterances))
        for utterance in utterances:
            entry = utterance.entry
            language = entry.lang if entry.lang and (backend.multilingual
                                                     or entry.lang == "en") else None
            options = TranscribeOptions(language=language)
            try:
                segments, _ = backend.transcribe(load_audio(entry.audio_filepath), options)
                texts.append(" ".join(s.text for s in segments).strip())
            except MedstreamError as error:
                section_notes.append(f"{utterance.id} failed and is scored as empty: {error}")
                texts.append("")
            progress.advance(task)
    return texts, backend.identifier


@dataclass(frozen=True)
class AsrRun:
    """The ASR stage of an evaluation: its section, metadata, and what it was given and said."""

    section: Section
    meta: dict[str, str]
    utterances: list[Utterance]
    hypotheses: list[str]


def _asr(manifests: Sequence[Path], transcripts: Path | None, model: str | None,
         glossary: Path | None, device: str) -> AsrRun:
    if (transcripts is None) == (model is None):
        raise UsageError("give exactly one of --transcripts DIR (score existing output) or "
                         "--model NAME (transcribe now)")
    utterances = _manifests(manifests)
    entries = [u.entry for u in utterances]
    languages = [entry.lang or "en" for entry in entries]
    notes: list[str] = []
    meta: dict[str, str] = {"data": ", ".join(map(str, manifests))}
    if transcripts is not None:
        hypotheses, meta["models"] = _transcripts_for(entries, transcripts)
        meta["transcripts"] = str(transcripts)
    else:
        assert model is not None
        hypotheses, meta["models"] = _transcribe(utterances, model, device, notes)
    section = asr_section([u.id for u in utterances], languages, [e.text for e in entries],
                          hypotheses, _glossary_terms(glossary),
                          corpora=[u.corpus for u in utterances])
    section.notes.extend(notes)
    return AsrRun(section, meta, utterances, hypotheses)


@eval_app.command("asr")
def eval_asr(
    manifests: Annotated[list[Path], typer.Argument(help="NeMo JSONL manifests, or folders "
                                                    "searched for manifest.jsonl.")],
    out: OutOption,
    transcripts: Annotated[Path | None, typer.Option(help="Folder of `medstream transcribe` "
                                                     "json outputs to score.")] = None,
    model: Annotated[str | None, typer.Option(help="Transcribe with this model instead.")]
    = None,
    glossary: Annotated[Path | None, typer.Option(help="Term list (TSV) for medical-term "
                                                  "recall.")] = None,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda (with --model).")] = "auto",
) -> None:
    """WER/CER/MER per language and medical-term recall over manifests."""
    def build() -> tuple[list[Section], dict[str, str]]:
        run = _asr(manifests, transcripts, model, glossary, device)
        return [run.section], run.meta

    _build("ASR evaluation", out, build)


@eval_app.command("pipeline")
def eval_pipeline(
    manifests: Annotated[list[Path], typer.Argument(help="NeMo JSONL manifests or folders.")],
    out: OutOption,
    model: Annotated[str, typer.Option(help="ASR model.")] = "base",
    ner_model: Annotated[str, typer.Option(help="NER model (shipped name or directory).")]
    = DEFAULT_NER_MODEL,
    glossary: Annotated[Path | None, typer.Option(help="Term list (TSV).")] = None,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
) -> None:
    """Run the system (ASR → NER) over manifests and score every stage."""
    def build() -> tuple[list[Section], dict[str, str]]:
        run = _asr(manifests, None, model, glossary, device)
        sections = [run.section]
        pending = Section("stages", "Stages not scored")
        try:
            sections.append(_entities_on_asr(run, ner_model, device))
            run.meta["ner_model"] = ner_model
        except (MedstreamError, UsageError) as error:
            pending.skipped["ner"] = str(error)
        pending.skipped["mt"] = ("medstream has no text translation backend yet (issue 4); "
                                 "score translations with `medstream eval mt`")
        return [*sections, pending], run.meta

    _build("Pipeline evaluation", out, build)


def _entities_on_asr(run: AsrRun, ner_model: str, device: str) -> Section:
    """Tag reference and ASR output of the English utterances; score the hypothesis' entities
    against the manifest's gold entities, or the tagger's own on the reference (silver)."""
    from ner.catalog import resolve_ner_model
    from ner.tagger import TaggerOptions, TransformerTagger

    chosen = [i for i, u in enumerate(run.utterances) if (u.entry.lang or "en") == "en"]
    if not chosen:
        raise UsageError("the NER model is English and no utterance is in English")
    resolved = resolve_ner_model(ner_model)
    tagger = TransformerTagger(resolved.path,
                               TaggerOptions(device="cuda" if device == "cuda" else "cpu"))
    entries = [run.utterances[i].entry for i in chosen]
    hypotheses = [run.hypotheses[i] for i in chosen]
    silver = not any(e.entities for e in entries)
    if silver:
        reference_spans = [[(e.start, e.end, e.type.value) for e in found]
                           for found in tagger.tag_batch([e.text for e in entries])]
    else:
        reference_spans = [[(s.start, s.end, s.type) for s in e.entities] for e in entries]
    references = [TaggedText.from_char_spans(e.text, spans)
                  for e, spans in zip(entries, reference_spans, strict=True)]
    predicted = [TaggedText.from_char_spans(text, [(e.start, e.end, e.type.value) for e in found])
                 for text, found in zip(hypotheses, tagger.tag_batch(hypotheses), strict=True)]
    section = asr_entity_section([run.utterances[i].id for i in chosen], references, predicted,
                                 silver, "en", resolved.identifier)
    if len(chosen) < len(run.utterances):
        section.notes.append(f"{len(run.utterances) - len(chosen)} non-English utterances were "
                             "left out: the NER model is English.")
    return section


@eval_app.command("mt")
def eval_mt(
    data: Annotated[Path, typer.Argument(help="Parallel TSV (id, src_lang, tgt_lang, src, ref).")],
    hyp: Annotated[Path, typer.Option(help="System output, one line per segment.")],
    out: OutOption,
    baseline: Annotated[Path | None, typer.Option(help="A second system to test against "
                                                  "(paired bootstrap).")] = None,
    comet_model: Annotated[str | None, typer.Option(help="COMET checkpoint, folder or cached "
                                                    "Hub id.")] = None,
    n_bootstrap: Annotated[int, typer.Option(min=1)] = 1000,
) -> None:
    """BLEU, chrF, chrF++, TER (and COMET when available) with confidence intervals."""
    def build() -> tuple[list[Section], dict[str, str]]:
        corpus = read_parallel_tsv(data)
        segments = list(corpus.segments)
        hypotheses = _lines(hyp, len(segments), "hypothesis file")
        base = _lines(baseline, len(segments), "baseline file") if baseline else None
        section = mt_section(segments, hypotheses, base, comet_model, n_bootstrap)
        if corpus.skipped:
            section.notes.append(f"{len(corpus.skipped)} rows with an empty source or "
                                 "reference were left out of the test set (the hypothesis "
                                 "file must not have lines for them).")
        return [section], {"data": str(data), "system": str(hyp)}

    _build("Translation evaluation", out, build)


@eval_app.command("ner")
def eval_ner(
    out: OutOption,
    gold: Annotated[list[Path] | None, typer.Option(help="Gold CoNLL/IOB2 file (repeat for "
                                                    "several corpora).")] = None,
    pred: Annotated[list[Path] | None, typer.Option(help="Predicted CoNLL/IOB2 file, same "
                                                    "tokens, one per --gold.")] = None,
    model: Annotated[Path | None, typer.Option(help="Tag the corpora under --data with this "
                                               "tagger (a recipes/ner export) instead.")] = None,
    data: Annotated[Path | None, typer.Option(help="With --model: folder of corpora "
                                              "(<corpus>/<split>.tsv).")] = None,
    split: Annotated[str, typer.Option(help="With --model: the split to score.")] = "devel",
    device: Annotated[str, typer.Option(help="With --model: cpu or cuda.")] = "cpu",
    limit: Annotated[int | None, typer.Option(min=1, help="With --model: only the first N "
                                              "sentences of each corpus.")] = None,
) -> None:
    """Entity F1 (strict, exact, partial, type) per corpus and per type."""
    def build() -> tuple[list[Section], dict[str, str]]:
        if model is not None:
            if data is None or gold or pred:
                raise UsageError("--model needs --data (and no --gold/--pred)")
            return [_tag_corpora(model, data, split, device, limit)], {
                "data": f"{data} ({split})", "models": str(model)}
        gold_files, pred_files = gold or [], pred or []
        if not gold_files or len(gold_files) != len(pred_files):
            raise UsageError(f"give --gold and --pred files in pairs ({len(gold_files)} --gold, "
                             f"{len(pred_files)} --pred), or --model with --data")
        corpora = {}
        for gold_path, pred_path in zip(gold_files, pred_files, strict=True):
            name = gold_path.parent.name if gold_path.stem in ("devel", "test", "train") \
                else gold_path.stem
            corpora[name] = (read_conll(gold_path), read_conll(pred_path))
        pairs = ", ".join(f"{g} ↔ {p}" for g, p in zip(gold_files, pred_files, strict=True))
        return [ner_section(corpora)], {"data": pairs}

    _build("Entity recognition evaluation", out, build)


def _tag_corpora(model: Path, data: Path, split: str, device: str,
                 limit: int | None) -> Section:
    """Tag every known corpus under ``data`` as written and in spoken style, and score it."""
    from ner.evaluation import tag_split
    from ner.schema import CORPUS_LABELS
    from ner.tagger import TaggerOptions, TransformerTagger

    names = [c for c in CORPUS_LABELS if (data / c / f"{split}.tsv").is_file()]
    if not names:
        raise UsageError(f"no known corpus ({', '.join(CORPUS_LABELS)}) has {split}.tsv under "
                         f"{data}")
    tagger = TransformerTagger(model, TaggerOptions(device=device))
    corpora: dict[str, tuple[Sequence[TaggedSentence], Sequence[TaggedSentence]]] = {}
    for name in names:
        for tagged in tag_split(tagger, data, name, split, limit):
            label = name if tagged.variant == "original" else f"{name} (spoken style)"
            corpora[label] = (tagged.gold, tagged.predicted)
    section = ner_section(corpora)
    section.notes.append("Spoken style: the same sentences lower-cased without punctuation, as "
                         "live transcripts look. Predicted types a corpus does not annotate are "
                         "not counted (NCBI-disease marks no organs).")
    return section


@eval_app.command("terms")
def eval_terms(
    data: Annotated[Path, typer.Argument(help="WMT23-style terminology JSONL.")],
    hyp: Annotated[Path, typer.Option(help="System output, one line per segment.")],
    out: OutOption,
    mode: Annotated[str, typer.Option(help="none, proper or random: which dictionary the "
                                      "system was given.")] = "proper",
    source_check: Annotated[bool, typer.Option(help="Count an entry only when its source "
                                               "term occurs in the source.")] = False,
) -> None:
    """Terminology success rate in one of the WMT23 modes."""
    def build() -> tuple[list[Section], dict[str, str]]:
        if mode not in MODES:
            raise UsageError(f"--mode must be one of {', '.join(MODES)}, not {mode!r}")
        segments = read_terminology_jsonl(data)
        hypotheses = _lines(hyp, len(segments), "hypothesis file")
        return ([terms_section(segments, hypotheses, mode, source_check)],
                {"data": str(data), "system": str(hyp)})

    _build("Terminology evaluation", out, build)


@eval_app.command("compare")
def eval_compare(
    baseline: Annotated[Path, typer.Argument(help="Report folder (or report.json).")],
    system: Annotated[Path, typer.Argument(help="Report folder (or report.json).")],
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write comparison.md and "
                                             "comparison.json here.")] = None,
) -> None:
    """Put two reports side by side, metric by metric, with the difference."""
    try:
        a, b = Report.load(baseline), Report.load(system)
    except ValueError as error:
        raise _fail(str(error)) from None
    names = (baseline.name or "baseline", system.name or "system")
    text = render_comparison(a, b, names)
    typer.echo(text)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "comparison.md").write_text(text, encoding="utf-8")
        rows = [{**d.__dict__, "delta": d.delta, "better": d.better}
                for d in compare_reports(a, b)]
        (out / "comparison.json").write_text(json.dumps(rows, indent=1) + "\n",
                                             encoding="utf-8")

