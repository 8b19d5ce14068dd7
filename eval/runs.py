"""What the ``medstream eval`` commands run: read the inputs, run the system, build sections.

Kept apart from the command definitions (:mod:`streaming.cli.evaluation`) so that it can be
used from Python.
Bad input raises :class:`UsageError` with a one-line message.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from rich.console import Console
from rich.progress import Progress

from eval.asr_entities import TaggedText
from eval.readers import ManifestEntry, TermSegment, read_manifest
from eval.report import Section
from eval.sections import asr_entity_section, asr_section, conll_spans, ner_span_section
from eval.terms import dictionary
from ner.iob import Span
from speech.errors import MedstreamError
from translate.glossary import read_glossary


class UsageError(MedstreamError):
    """Bad input for an eval command: reported in one line, exit status 2."""


def read_outputs(path: Path, expected: int, what: str) -> list[str]:
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


def read_manifests(paths: Sequence[Path]) -> list[Utterance]:
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


def glossary_terms(path: Path | None) -> dict[str, list[str]]:
    """Terms per language: source terms in their language and target terms in theirs."""
    if path is None:
        return {}
    terms: dict[str, set[str]] = defaultdict(set)
    for entry in read_glossary(path):
        if entry.src_lang:
            terms[entry.src_lang.split("-")[0]].add(entry.source)
        if entry.tgt_lang:
            terms[entry.tgt_lang.split("-")[0]].add(entry.target)
    return {language: sorted(values) for language, values in terms.items()}


class TranscriptIndex(Protocol):
    """Transcripts already written for recordings (the batch job's json files, found by the
    recordings' content: :class:`streaming.document.TranscriptFolder`)."""

    where: str

    def find(self, audio: Path) -> tuple[str, str] | None:
        """The text of ``audio``'s transcript and the model that wrote it; None when none."""
        ...


def transcripts_for(entries: Sequence[ManifestEntry], index: TranscriptIndex
                    ) -> tuple[list[str], str]:
    """The transcripts of ``entries`` in ``index``, and the models that wrote them."""
    texts: list[str] = []
    missing: list[str] = []
    models: set[str] = set()
    for entry in entries:
        if not entry.audio_filepath.is_file():
            raise UsageError(f"audio file {entry.audio_filepath} (in a manifest) is missing")
        found = index.find(entry.audio_filepath)
        if found is None:
            missing.append(str(entry.audio_filepath))
        else:
            models.add(found[1])
        texts.append(found[0] if found else "")
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5
                                          else "")
        raise UsageError(f"{len(missing)} of {len(entries)} recordings have no transcript in "
                         f"{index.where}: {shown}. Run `medstream transcribe` on them first.")
    return texts, "; ".join(sorted(models))


def transcribe_all(utterances: Sequence[Utterance], model: str, device: str,
                section_notes: list[str]) -> tuple[list[str], str]:
    """Run the recogniser over every entry; a recording that fails is noted and scored empty."""
    from speech.audio import load_audio
    from speech.loader import load_asr
    from speech.options import Device, ModelOptions, TranscribeOptions

    device_choice: Device = "cpu" if device == "cpu" else "cuda" if device == "cuda" else "auto"
    backend = load_asr(model, ModelOptions(device=device_choice), allow_download=False)
    texts = []
    with Progress(console=Console(stderr=True), transient=True) as progress:
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


def run_asr(manifests: Sequence[Path], transcripts: TranscriptIndex | None, model: str | None,
         glossary: Path | None, device: str) -> AsrRun:
    if (transcripts is None) == (model is None):
        raise UsageError("give exactly one of --transcripts DIR (score existing output) or "
                         "--model NAME (transcribe now)")
    utterances = read_manifests(manifests)
    entries = [u.entry for u in utterances]
    languages = [entry.lang or "en" for entry in entries]
    notes: list[str] = []
    meta: dict[str, str] = {"data": ", ".join(map(str, manifests))}
    if transcripts is not None:
        hypotheses, meta["models"] = transcripts_for(entries, transcripts)
        meta["transcripts"] = transcripts.where
    else:
        assert model is not None
        hypotheses, meta["models"] = transcribe_all(utterances, model, device, notes)
    section = asr_section([u.id for u in utterances], languages, [e.text for e in entries],
                          hypotheses, glossary_terms(glossary),
                          corpora=[u.corpus for u in utterances])
    section.notes.extend(notes)
    return AsrRun(section, meta, utterances, hypotheses)


def entities_on_asr(run: AsrRun, ner_model: str, device: str) -> Section:
    """Run the entity recognizer (tagger, lexicon, rules) on reference and ASR output of the
    English utterances; score the hypothesis' entities against the manifest's gold entities,
    or against the recognizer's own on the reference (silver)."""
    from ner.build import build_recognizer
    from ner.catalog import resolve_ner_model

    chosen = [i for i, u in enumerate(run.utterances) if (u.entry.lang or "en") == "en"]
    if not chosen:
        raise UsageError("the NER model is English and no utterance is in English")
    resolved = resolve_ner_model(ner_model)
    recognizer = build_recognizer(ner_model, "cuda" if device == "cuda" else "cpu", "en", [])
    entries = [run.utterances[i].entry for i in chosen]
    hypotheses = [run.hypotheses[i] for i in chosen]
    silver = not any(e.entities for e in entries)
    if silver:
        reference_spans = [[(e.start, e.end, e.type.value) for e in found]
                           for found in recognizer.recognize([e.text for e in entries], "en")]
    else:
        reference_spans = [[(s.start, s.end, s.type) for s in e.entities] for e in entries]
    references = [TaggedText.from_char_spans(e.text, spans)
                  for e, spans in zip(entries, reference_spans, strict=True)]
    predicted = [TaggedText.from_char_spans(text, [(e.start, e.end, e.type.value) for e in found])
                 for text, found in zip(hypotheses, recognizer.recognize(hypotheses, "en"),
                                              strict=True)]
    section = asr_entity_section([run.utterances[i].id for i in chosen], references, predicted,
                                 silver, "en", resolved.identifier)
    if len(chosen) < len(run.utterances):
        section.notes.append(f"{len(run.utterances) - len(chosen)} non-English utterances were "
                             "left out: the NER model is English.")
    return section


def score_files(gold_files: Sequence[Path], pred_files: Sequence[Path]) -> Section:
    """Entity F1 of each predicted file against its gold file: CoNLL files (same tokens) or
    raw JSONL (``*.jsonl``: same texts, entities as character spans, strict on characters).
    A corpus is named by its folder for ``devel``/``test``/``train`` files, else the stem."""
    from ner.conll import read_conll
    from ner.raw_corpora import read_raw_jsonl
    from ner.schema import CORPUS_LABELS

    corpora: dict[str, tuple[Sequence[Sequence[Span]], Sequence[Sequence[Span]]]] = {}
    for gold_path, pred_path in zip(gold_files, pred_files, strict=True):
        stem = gold_path.name.split(".")[0]
        name = gold_path.parent.name if stem in ("devel", "test", "train") else stem
        if gold_path.suffix == ".jsonl":
            corpus = name if name in CORPUS_LABELS else None
            gold_docs = read_raw_jsonl(gold_path, corpus)
            pred_docs = read_raw_jsonl(pred_path, corpus)
            if [d.text for d in gold_docs] != [d.text for d in pred_docs]:
                raise UsageError(f"{pred_path} does not hold the texts of {gold_path}, in order")
            corpora[name] = ([d.spans for d in gold_docs], [d.spans for d in pred_docs])
            continue
        gold, predicted = read_conll(gold_path), read_conll(pred_path)
        try:
            corpora[name] = conll_spans(name, gold, predicted)
        except ValueError as error:
            raise UsageError(str(error)) from error
    return ner_span_section(corpora)


def tag_corpora(model: str, data: Path, split: str, device: str,
                limit: int | None, part: str = "all") -> Section:
    """Tag every known corpus under ``data`` as raw text (the headline: originals with
    character offsets where the corpus has them, else detokenized CoNLL), as written CoNLL
    tokens (as documents and sentence by sentence) and in spoken style, and score it; on
    ``part`` of the split (all, or the choose / report half)."""
    from ner.catalog import resolve_ner_model
    from ner.evaluation import DOCUMENT_WINDOW, RAW_LABELS, VARIANT_LABELS, tag_raw_split, tag_split
    from ner.raw_corpora import PARTS
    from ner.schema import CORPUS_LABELS
    from ner.tagger import TaggerOptions, TransformerTagger

    chosen = next((p for p in PARTS if p == part), None)
    if chosen is None:
        raise UsageError(f"--part must be one of {', '.join(PARTS)}, not {part!r}")
    names = [c for c in CORPUS_LABELS if (data / c / f"{split}.tsv").is_file()]
    if not names:
        raise UsageError(f"no known corpus ({', '.join(CORPUS_LABELS)}) has {split}.tsv under "
                         f"{data}")
    tagger = TransformerTagger(resolve_ner_model(model).path, TaggerOptions(device=device))
    corpora: dict[str, tuple[Sequence[Sequence[Span]], Sequence[Sequence[Span]]]] = {}
    detokenized = []
    for name in names:
        for raw in tag_raw_split(tagger, data, name, split, chosen, limit=limit):
            corpora[name + RAW_LABELS[raw.variant]] = ([d.spans for d in raw.documents],
                                                       raw.predicted)
            if not raw.original and name not in detokenized:
                detokenized.append(name)
        for tagged in tag_split(tagger, data, name, split, limit, part=chosen):
            corpora[name + VARIANT_LABELS[tagged.variant]] = (
                [s.spans for s in tagged.gold], [s.spans for s in tagged.predicted])
    section = ner_span_section(corpora)
    section.notes.append(f"Part of the split: {chosen} (choose: the first half of its "
                         "documents, where settings are compared; report: the second half). "
                         "Raw text: each document handed over as text and scored by exact "
                         "character spans, through the corpus' head; raw text, pipeline: the "
                         "recognizer `medstream ner` runs (view, lexicon, rules). Raw text of "
                         + (", ".join(detokenized) or "no corpus") + ": its CoNLL sentences "
                         "detokenized (no originals with offsets available).")
    section.notes.append("Written text is read in order as documents: an abbreviation a "
                         "sentence defines (\"overactive bladder (OAB)\") takes its long "
                         f"form's type in the next {DOCUMENT_WINDOW} sentences "
                         "(ner/abbreviations.py). Sentences alone: the same tags with each "
                         "sentence read on its own.")
    section.notes.append("Spoken style: the same sentences lower-cased without punctuation, as "
                         "live transcripts look. Predicted types a corpus does not annotate are "
                         "not counted (NCBI-disease marks no organs).")
    if len(tagger.heads.groups) > 1:
        view = ", ".join(f"{t.value} from {h}" for t, h in tagger.heads.view.items())
        section.notes.append("The model has one head per training corpus; each corpus is "
                             "scored through its own head. Pipeline view: the same sentences "
                             f"read as the pipeline reads them ({view}).")
    return section


def translate_terminology(segments: Sequence[TermSegment], model: str, mode: str,
                          decode: str, device: str = "cpu") -> tuple[list[str], str]:
    """Translate a WMT23-style test set with ``model`` as a system of the WMT23 ``mode``: no
    dictionary (``none``), or each segment's ``proper`` / ``random`` term pairs as
    constraints, honoured in ``decode`` mode (hard, soft or none). Returns the outputs and the
    model's identifier. Numbers are not added as constraints, so the score measures the
    dictionary alone."""
    from translate.catalog import load_mt_model
    from translate.constraints import pair_constraints
    from translate.protocol import make_translator
    from translate.translator import Terminology
    from translate.types import TERM_MODES, TranslateOptions

    chosen = next((m for m in TERM_MODES if m == decode), None)
    if chosen is None:
        raise UsageError(f"--decode must be one of {', '.join(TERM_MODES)}, not {decode!r}")
    translator = make_translator(load_mt_model(model, device=device), Terminology(numbers=False))
    options = TranslateOptions(terms=chosen)
    outputs = [""] * len(segments)
    groups: dict[tuple[str, str], list[int]] = {}
    for index, segment in enumerate(segments):
        groups.setdefault((segment.src_lang, segment.tgt_lang), []).append(index)
    for (source, target), indices in groups.items():
        terms = [pair_constraints(segments[i].src,
                                  [(p.source, p.target) for p in dictionary(segments[i], mode)]
                                  if mode != "none" else [], source) for i in indices]
        found = translator.translate([segments[i].src for i in indices], source, target,
                                     options, terms)
        for index, translation in zip(indices, found, strict=True):
            outputs[index] = translation.text
    return outputs, translator.identifier
