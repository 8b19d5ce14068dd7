"""``medstream eval``: score a stage (asr, mt, ner, terms, diarization) or the pipeline; compare
two reports.

Every command writes a report folder (``report.json``, ``report.md``, PNG plots) and prints
the markdown summary. Input problems (a missing file, a hypothesis file of the wrong length, a
transcript that is not there) stop the command with a clear message and exit status 2.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from eval.conversations import HYPOTHESIS_KINDS, read_conversations
from eval.diarization import DEFAULT_COLLAR
from eval.diarization_run import diarization_section, pair_conversations
from eval.mt_run import (
    glossary_terms_section,
    reversed_entries,
    reversed_segments,
    translate_segments,
)
from eval.output import write_report
from eval.readers import ParallelSegment, read_parallel_tsv, read_terminology_jsonl
from eval.report import (
    Report,
    Section,
    compare_reports,
    render_comparison,
    render_markdown,
)
from eval.runs import (
    UsageError,
    entities_on_asr,
    read_outputs,
    run_asr,
    score_files,
    tag_corpora,
    translate_terminology,
)
from eval.sections import (
    mt_section,
    terms_section,
)
from eval.terms import MODES
from ner.catalog import DEFAULT_NER_MODEL
from speech.errors import MedstreamError
from streaming.cli.console import fail, stderr
from streaming.document import TranscriptFolder
from translate.glossary import read_glossary
from translate.types import TERM_MODES

eval_app = typer.Typer(help="Measure a stage or the whole pipeline; compare two reports.",
                       no_args_is_help=True)

OutOption = Annotated[Path, typer.Option("--out", "-o", help="Report folder to write.")]


def _build(title: str, out: Path, build: Callable[[], tuple[list[Section], dict[str, str]]]
           ) -> None:
    """Run ``build`` (sections and report metadata), then write and print the report."""
    try:
        sections, meta = build()
    except (MedstreamError, ValueError) as error:
        raise fail(str(error)) from None
    report = Report.new(title, **meta)
    report.sections.extend(sections)
    written = write_report(report, out)
    typer.echo(render_markdown(report))
    stderr.print(f"wrote {', '.join(p.name for p in written)} to {out}", highlight=False)


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
        index = TranscriptFolder(transcripts) if transcripts is not None else None
        run = run_asr(manifests, index, model, glossary, device)
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
        run = run_asr(manifests, None, model, glossary, device)
        sections = [run.section]
        pending = Section("stages", "Stages not scored")
        try:
            sections.append(entities_on_asr(run, ner_model, device))
            run.meta["ner_model"] = ner_model
        except MedstreamError as error:
            pending.skipped["ner"] = str(error)
        pending.skipped["mt"] = ("medstream has no text translation backend yet (issue 4); "
                                 "score translations with `medstream eval mt`")
        return [*sections, pending], run.meta

    _build("Pipeline evaluation", out, build)


@eval_app.command("mt")
def eval_mt(
    data: Annotated[Path, typer.Argument(help="Parallel TSV (id, src_lang, tgt_lang, src, ref).")],
    out: OutOption,
    hyp: Annotated[Path | None, typer.Option(help="System output, one line per segment.")]
    = None,
    model: Annotated[str | None, typer.Option(help="Translate the segments here with this MT "
                                              "model instead (directory or catalog name, "
                                              "e.g. bergamot-en-pt).")] = None,
    glossary: Annotated[list[Path] | None, typer.Option(help="With --model: glossary honoured "
                                                        "(repeatable); its term success is "
                                                        "reported.")] = None,
    terms: Annotated[str, typer.Option(help="With --model: hard, soft or none.")] = "hard",
    reverse: Annotated[bool, typer.Option(help="Read the test set (and glossary) the other "
                                          "way round: references → sources.")] = False,
    first: Annotated[int | None, typer.Option(min=1, help="Only the first N segments.")] = None,
    last: Annotated[int | None, typer.Option(min=1, help="Only the last N segments.")] = None,
    device: Annotated[str, typer.Option(help="With --model: cpu or cuda.")] = "cpu",
    baseline: Annotated[Path | None, typer.Option(help="A second system to test against "
                                                  "(paired bootstrap).")] = None,
    comet_model: Annotated[str | None, typer.Option(help="COMET checkpoint, folder or cached "
                                                    "Hub id.")] = None,
    n_bootstrap: Annotated[int, typer.Option(min=1)] = 1000,
) -> None:
    """BLEU, chrF, chrF++, TER (and COMET when available) with confidence intervals; with
    --model, the translation is made here and glossary term success is reported too."""
    def build() -> tuple[list[Section], dict[str, str]]:
        if (hyp is None) == (model is None):
            raise UsageError("give --hyp (system output) or --model (translate here)")
        if glossary and model is None:
            raise UsageError("--glossary needs --model")
        corpus = read_parallel_tsv(data)
        chosen = _rows(len(corpus.segments), first, last)
        segments = list(corpus.segments)
        segments = reversed_segments(segments) if reverse else segments
        base = read_outputs(baseline, len(segments), "baseline file") if baseline else None
        sections: list[Section] = []
        if model is not None:
            hypotheses, system, term_section = _translate_here(
                segments[chosen], model, glossary or [], terms, reverse, device, out)
            sections.append(term_section)
        else:
            assert hyp is not None
            hypotheses = read_outputs(hyp, len(segments), "hypothesis file")[chosen]
            system = str(hyp)
        section = mt_section(segments[chosen], hypotheses, base[chosen] if base else None,
                             comet_model, n_bootstrap)
        if corpus.skipped:
            section.notes.append(f"{len(corpus.skipped)} rows with an empty source or "
                                 "reference were left out of the test set (the hypothesis "
                                 "file must not have lines for them).")
        part = f" [{chosen.start or 0}:{chosen.stop or len(segments)}]" if first or last else ""
        return [section, *sections], {"data": f"{data}{part}{' reversed' if reverse else ''}",
                                      "system": system}

    _build("Translation evaluation", out, build)


def _rows(count: int, first: int | None, last: int | None) -> slice:
    """The segments --first/--last choose (both: the last N of the first M)."""
    stop = min(first, count) if first is not None else count
    return slice(max(stop - last, 0) if last is not None else 0, stop)


def _translate_here(segments: list[ParallelSegment], model: str, glossaries: list[Path],
                    terms: str, reverse: bool, device: str, out: Path
                    ) -> tuple[list[str], str, Section]:
    """Translate with ``model`` under the glossaries; write hypotheses.txt into ``out``."""
    mode = next((m for m in TERM_MODES if m == terms), None)
    if mode is None:
        raise UsageError(f"--terms must be one of {', '.join(TERM_MODES)}, not {terms!r}")
    entries = [e for path in glossaries for e in read_glossary(path)]
    translations, system = translate_segments(
        segments, model, reversed_entries(entries) if reverse else entries, mode, device)
    hypotheses = [t.text for t in translations]
    out.mkdir(parents=True, exist_ok=True)
    (out / "hypotheses.txt").write_text("".join(f"{h}\n" for h in hypotheses),
                                        encoding="utf-8")
    return hypotheses, f"{system}, terms {mode}", glossary_terms_section(translations, mode)


@eval_app.command("ner")
def eval_ner(
    out: OutOption,
    gold: Annotated[list[Path] | None, typer.Option(help="Gold CoNLL/IOB2 file, or raw JSONL "
                                                    "(*.jsonl; repeat for several corpora).")]
    = None,
    pred: Annotated[list[Path] | None, typer.Option(help="Predicted file, one per --gold, "
                                                    "same tokens (CoNLL) or texts (JSONL).")]
    = None,
    model: Annotated[str | None, typer.Option(help="Tag the corpora under --data with this "
                                              "tagger (shipped name or directory) instead.")]
    = None,
    data: Annotated[Path | None, typer.Option(help="With --model: folder of corpora "
                                              "(<corpus>/<split>.tsv).")] = None,
    split: Annotated[str, typer.Option(help="With --model: the split to score.")] = "devel",
    device: Annotated[str, typer.Option(help="With --model: cpu or cuda.")] = "cpu",
    limit: Annotated[int | None, typer.Option(min=1, help="With --model: only the first N "
                                              "sentences (raw: documents) of each corpus.")]
    = None,
    part: Annotated[str, typer.Option(help="With --model: all, choose (first half of the "
                                      "documents) or report (second half).")] = "all",
) -> None:
    """Entity F1 (strict, exact, partial, type) per corpus and per type, on raw text
    (``*.raw.jsonl``: text + character-offset entities) and on CoNLL tokens."""
    def build() -> tuple[list[Section], dict[str, str]]:
        if model is not None:
            if data is None or gold or pred:
                raise UsageError("--model needs --data (and no --gold/--pred)")
            return [tag_corpora(model, data, split, device, limit, part)], {
                "data": f"{data} ({split}, {part})", "models": str(model)}
        gold_files, pred_files = gold or [], pred or []
        if not gold_files or len(gold_files) != len(pred_files):
            raise UsageError(f"give --gold and --pred files in pairs ({len(gold_files)} --gold, "
                             f"{len(pred_files)} --pred), or --model with --data")
        pairs = ", ".join(f"{g} ↔ {p}" for g, p in zip(gold_files, pred_files, strict=True))
        return [score_files(gold_files, pred_files)], {"data": pairs}

    _build("Entity recognition evaluation", out, build)


@eval_app.command("terms")
def eval_terms(
    data: Annotated[Path, typer.Argument(help="WMT23-style terminology JSONL.")],
    out: OutOption,
    hyp: Annotated[Path | None, typer.Option(help="System output, one line per segment.")]
    = None,
    model: Annotated[str | None, typer.Option(help="Translate the segments with this MT "
                                              "model instead (directory or catalog name).")]
    = None,
    decode: Annotated[str, typer.Option(help="With --model: hard, soft or none (how the "
                                        "dictionary is honoured).")] = "hard",
    mode: Annotated[str, typer.Option(help="none, proper or random: which dictionary the "
                                      "system was given.")] = "proper",
    last: Annotated[int | None, typer.Option(min=1, help="Only the last N segments (e.g. a "
                                             "held-out part).")] = None,
    device: Annotated[str, typer.Option(help="With --model: cpu or cuda.")] = "cpu",
    source_check: Annotated[bool, typer.Option(help="Count an entry only when its source "
                                               "term occurs in the source.")] = False,
) -> None:
    """Terminology success rate in one of the WMT23 modes, with BLEU and chrF against the
    references (the WMT23 rows are partly misaligned: read BLEU with care)."""
    def build() -> tuple[list[Section], dict[str, str]]:
        if mode not in MODES:
            raise UsageError(f"--mode must be one of {', '.join(MODES)}, not {mode!r}")
        if (hyp is None) == (model is None):
            raise UsageError("give --hyp (system output) or --model (translate here)")
        segments = read_terminology_jsonl(data)
        if last is not None:
            segments = segments[-last:]
        if model is not None:
            hypotheses, system = translate_terminology(segments, model, mode, decode, device)
            out.mkdir(parents=True, exist_ok=True)
            (out / "hypotheses.txt").write_text("".join(f"{h}\n" for h in hypotheses),
                                                encoding="utf-8")
            system = f"{system}, decode {decode}"
        else:
            assert hyp is not None
            hypotheses, system = read_outputs(hyp, len(segments), "hypothesis file"), str(hyp)
        parallel = [ParallelSegment(s.id, s.src_lang, s.tgt_lang, s.src, s.ref)
                    for s in segments]
        return ([terms_section(segments, hypotheses, mode, source_check),
                 mt_section(parallel, hypotheses)],
                {"data": str(data), "system": system, "segments": str(len(segments))})

    _build("Terminology evaluation", out, build)


@eval_app.command("diarization")
def eval_diarization(
    out: OutOption,
    hyp: Annotated[list[Path], typer.Option(help="System output: medstream json transcripts "
                                            "(with speakers and roles) or RTTM files; files "
                                            "or folders (repeat).")],
    ref: Annotated[list[Path], typer.Option(help="References: RTTM, D:/P: transcripts (.txt), "
                                            "dialogue turns (.jsonl), or dataset folders whose "
                                            "manifest.jsonl names them (repeat).")],
    collar: Annotated[float, typer.Option(min=0, help="Seconds not scored on EACH side of a "
                                          "reference boundary for DER/JER (NIST convention).")]
    = DEFAULT_COLLAR,
    language: Annotated[str, typer.Option(help="Language of the transcripts (normaliser).")]
    = "en",
) -> None:
    """DER and JER, WER, cpWER, role-attributed WER and role accuracy, per recording and
    overall. A file that cannot be read, or a recording without a hypothesis, is reported and
    the others are still scored (exit status 1 then)."""
    problems: dict[str, str] = {}

    def build() -> tuple[list[Section], dict[str, str]]:
        references = read_conversations(ref)
        hypotheses = read_conversations(hyp, HYPOTHESIS_KINDS)
        pairs, found = pair_conversations(references, hypotheses)
        problems.update(found)
        if not pairs:
            details = "; ".join(found.values()) or "no recording in the references"
            raise UsageError(f"no recording could be scored: {details}")
        return ([diarization_section(pairs, found, collar, language)],
                {"data": ", ".join(map(str, ref)), "system": ", ".join(map(str, hyp)),
                 "recordings": str(len(pairs))})

    _build("Diarization and role evaluation", out, build)
    if problems:
        for message in problems.values():
            stderr.print(f"[bold yellow]not scored:[/] {message}", highlight=False)
        raise typer.Exit(1)


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
        raise fail(str(error)) from None
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

