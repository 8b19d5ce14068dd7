"""``medstream transcribe``: recordings in files and folders → transcripts, with resume."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.logging import RichHandler

from ner.build import RecognizerSpec
from ner.catalog import DEFAULT_NER_MODEL
from speech.backends.faster_whisper import resolve_device
from speech.errors import InvalidOptionError, MedstreamError
from speech.options import Device, ModelOptions, TranscribeOptions
from speech.types import Task
from speech.vocabulary import load_vocabulary
from streaming.batch.job import (
    BatchJob,
    BatchSummary,
    BatchTranscriber,
    FileOutcome,
    PipelineInfo,
    auto_parallelism,
    discover_inputs,
    probe_durations,
)
from streaming.batch.ray_job import RayBatch
from streaming.batch.writers import FORMATS
from streaming.cli.console import fail, stderr
from streaming.cli.progress import RichProgress, summary_table
from streaming.speakers import SpeakerSpec, parse_speaker_count
from streaming.stages import PipelineSpec, TranslationSpec
from translate.types import TERM_MODES, TermMode

EXIT_FILES_FAILED = 1
EXIT_INTERRUPTED = 130


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(message)s",
        handlers=[RichHandler(console=stderr, show_path=False)],
        force=True,
    )
    # faster-whisper logs progress and VAD details at INFO; keep them for --verbose.
    logging.getLogger("faster_whisper").setLevel(logging.DEBUG if verbose else logging.WARNING)


def transcribe(
    inputs: Annotated[list[Path], typer.Argument(help="Audio files and folders (recursive).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path("transcripts"),
    model: Annotated[str, typer.Option(help="Model name (base, tiny.en, large-v3 …), Hub id or "
                                       "directory. See `medstream models list`.")] = "base",
    language: Annotated[str, typer.Option(help="Spoken language (ISO 639-1) or 'auto'.")] = "auto",
    languages: Annotated[str | None, typer.Option(
        help="A bilingual recording's languages, e.g. en,pt (an interpreted consultation): "
             "each stretch of speech is identified among them and transcribed in its own "
             "language. Needs --language auto and a multilingual model.")] = None,
    task: Annotated[str, typer.Option(help="transcribe, or translate (speech → English).")]
    = "transcribe",
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    compute_type: Annotated[str, typer.Option(help="auto (int8 on CPU, float16 on CUDA), int8, "
                                              "int8_float16, float16, float32 …")] = "auto",
    batch_size: Annotated[int, typer.Option(min=0, help="Chunks of one recording decoded "
                                            "together; 1 decodes sequentially (more accurate); "
                                            "0 = auto: 8 on CUDA, 1 on CPU.")] = 0,
    workers: Annotated[int, typer.Option(min=0, help="Recordings transcribed at once, sharing "
                                         "one model; 0 = auto: CPU cores on CPU, 1 on CUDA.")]
    = 0,
    beam_size: Annotated[int, typer.Option(min=1)] = 5,
    vocabulary: Annotated[Path | None, typer.Option(help="Medical terms to bias recognition "
                                                    "towards: one per line, or TSV/CSV.")] = None,
    initial_prompt: Annotated[str | None, typer.Option(help="Text Whisper reads before the "
                                                     "audio, e.g. a clinic's style or a "
                                                     "patient's name spelled out.")] = None,
    formats: Annotated[str, typer.Option("--format", "-f", help="Comma-separated: "
                                         + ",".join(FORMATS) + " (json is always written).")]
    = ",".join(FORMATS),
    overwrite: Annotated[bool, typer.Option(help="Transcribe again even if outputs are "
                                            "complete.")] = False,
    entities: Annotated[bool, typer.Option("--entities", help="Mark medications (with dose, "
                                           "frequency, route), conditions, anatomy and "
                                           "procedures in each segment.")] = False,
    ner_model: Annotated[str, typer.Option(help="NER model for --entities: shipped name or "
                                           "directory.")] = DEFAULT_NER_MODEL,
    lexicon: Annotated[list[Path] | None, typer.Option(help="Term list for --entities (TSV/CSV: "
                                                       "term, type[, code]) in --language "
                                                       "(English when auto); repeatable.")]
    = None,
    highlight: Annotated[bool, typer.Option(help="Mark the entities in txt, srt and vtt (json "
                                            "always carries them).")] = True,
    translate_to: Annotated[str | None, typer.Option(help="Translate each segment into this "
                                                     "language (ISO 639-1), or with "
                                                     "--languages A,B into 'other': the other "
                                                     "party's.")] = None,
    mt_model: Annotated[str | None, typer.Option(help="MT model for --translate-to (directory, "
                                                 "catalog name or Hub id); without one, "
                                                 "English comes from Whisper's speech "
                                                 "translation.")] = None,
    glossary: Annotated[list[Path] | None, typer.Option(help="Glossary for --translate-to "
                                                        "(TSV, CSV or TBX); repeatable.")]
    = None,
    term_mode: Annotated[str, typer.Option("--terms", help="How --mt-model honours the "
                                           "glossary: hard, soft or none.")] = "hard",
    speakers: Annotated[str | None, typer.Option(
        "--speakers", metavar="auto|N", help="Say who spoke: diarize each recording (auto: "
        "find how many speakers; N: at most N, e.g. 2 for a consultation), split segments "
        "where the speaker changes and name each speaker's role (clinician, patient, "
        "other).")] = None,
    vad: Annotated[bool, typer.Option(help="Skip non-speech with Silero VAD.")] = True,
    print_text: Annotated[bool, typer.Option("--print", help="Print each transcript to stdout "
                                             "as it completes.")] = False,
    offline: Annotated[bool, typer.Option(help="Never contact the model hub.")] = False,
    ray: Annotated[str | None, typer.Option(
        "--ray", metavar="ADDRESS", help="Run on a Ray cluster: 'local' starts one on this "
        "machine, 'auto' joins a running one, or host:port / ray://host:10001. Needs the ray "
        "extra; --workers then counts recogniser actors (0 = one per GPU, else per core).")]
    = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Transcribe recordings into txt, srt, vtt and json, resuming where a previous run stopped."""
    _setup_logging(verbose)
    _check_combinations(task, term_mode, entities=entities, lexicon=bool(lexicon),
                        translate_to=translate_to, mt_model=mt_model, glossary=bool(glossary))
    speaker_spec = _speaker_spec(speakers)
    items, missing = discover_inputs(inputs)
    try:
        terms = load_vocabulary(vocabulary) if vocabulary is not None else ()
        auto_workers, auto_batch = auto_parallelism(resolve_device(device) == "cuda", len(items))
        options = TranscribeOptions(
            language=None if language == "auto" else language,
            languages=_languages(languages), task=_task(task), beam_size=beam_size,
            batch_size=batch_size or auto_batch,
            vad_filter=vad, vocabulary=terms, initial_prompt=initial_prompt,
            word_timestamps=True)  # --speakers gives words to speakers
        job = BatchJob(out_dir=out, options=options,
                       formats=tuple(f.strip() for f in formats.split(",") if f.strip()),
                       overwrite=overwrite, highlight=highlight)
        spec = PipelineSpec(
            model, ModelOptions(device=_device(device), compute_type=compute_type,
                                workers=workers or auto_workers), options,
            entities=RecognizerSpec(ner_model, resolve_device(device),
                                    "en" if language == "auto" else language,
                                    tuple(lexicon or ())) if entities else None,
            translation=_translation(translate_to, options.languages, mt_model,
                                     tuple(glossary or ()), _term_mode(term_mode)),
            allow_download=not offline, speakers=speaker_spec)
        runner: BatchTranscriber | RayBatch | None = None
        if ray is None:
            backend, annotator, translator = spec.load()
            runner = BatchTranscriber(backend, job, workers=workers or auto_workers,
                                      annotator=annotator, translator=translator,
                                      speakers=spec.load_speakers())
        elif items:
            runner = RayBatch.connect(ray, spec, job, workers, auto_batch=not batch_size,
                                      verbose=verbose)
        info = runner.info if runner is not None else None
    except (MedstreamError, ValueError) as exc:
        raise fail(str(exc)) from None
    if not items and not missing:
        raise fail("no audio files found in " + ", ".join(map(str, inputs)))
    summary = BatchSummary()
    if runner is not None and info is not None:
        _announce(runner, info)
        durations = probe_durations(items)
        with RichProgress(stderr, len(items), sum(d or 0.0 for d in durations.values())
                          ) as progress:
            runner.listener = progress
            summary = runner.run(items, on_outcome=_reporter(print_text), durations=durations)
    summary.outcomes[:0] = missing
    for outcome in missing:
        _reporter(print_text)(outcome)
    _conclude(summary)


def _languages(text: str | None) -> tuple[str, ...]:
    """``--languages en,pt`` as a tuple (empty without it)."""
    return tuple(x.strip() for x in (text or "").split(",") if x.strip())


def _translation(translate_to: str | None, languages: tuple[str, ...], mt_model: str | None,
                 glossaries: tuple[Path, ...], terms: TermMode) -> TranslationSpec | None:
    """``--translate-to``: a language, or ``other`` (each segment into the other of the two
    ``--languages``); None without it."""
    if translate_to is None:
        return None
    if translate_to != "other":
        return TranslationSpec(translate_to, mt_model, glossaries, terms)
    if len(languages) != 2:
        raise fail("--translate-to other needs the two languages of a bilingual recording: "
                   "add --languages A,B")
    return TranslationSpec(translate_to, mt_model, glossaries, terms,
                           parties=(languages[0], languages[1]))


def _check_combinations(task: str, term_mode: str, *, entities: bool, lexicon: bool,
                        translate_to: str | None, mt_model: str | None,
                        glossary: bool) -> None:
    """Refuse (exit 2) options that contradict each other, before any work starts."""
    if task not in ("transcribe", "translate"):
        raise fail(f"--task must be transcribe or translate, not {task!r}")
    if lexicon and not entities:
        raise fail("--lexicon is used by --entities; add --entities")
    if (mt_model or glossary) and not translate_to:
        raise fail("--mt-model and --glossary are used by --translate-to; add --translate-to")
    if term_mode not in TERM_MODES:
        raise fail(f"--terms must be one of {', '.join(TERM_MODES)}, not {term_mode!r}")


def _speaker_spec(value: str | None) -> SpeakerSpec | None:
    """``--speakers`` as a spec (exit 2 when it is neither ``auto`` nor a count)."""
    if value is None:
        return None
    try:
        return SpeakerSpec(parse_speaker_count(value))
    except ValueError as exc:
        raise fail(str(exc)) from None


def _announce(runner: BatchTranscriber | RayBatch, info: PipelineInfo) -> None:
    """Say on stderr which models the batch runs (and, on Ray, on how many actors)."""
    stderr.print(f"model: {info.asr}", highlight=False)
    if info.speakers is not None:
        stderr.print(f"speakers: {info.speakers}", highlight=False)
    if info.entities is not None:
        stderr.print(f"entities: {info.entities}", highlight=False)
    if info.translation is not None:
        stderr.print(f"translation to {info.translation}", highlight=False)
    if isinstance(runner, RayBatch):
        plan = runner.plan
        stderr.print(f"ray: {plan.asr_actors} recogniser actor(s) on {plan.device}",
                     highlight=False)


def _reporter(print_text: bool) -> Callable[[FileOutcome], None]:
    """What happens as each file finishes: failures, and recordings that decoded only in part
    (truncated or damaged: transcribed as far as they go), on stderr; texts on stdout with
    --print."""

    def report(outcome: FileOutcome) -> None:
        if outcome.warning is not None:
            stderr.print(f"[bold yellow]warning:[/] {outcome.input.path}: {outcome.warning}",
                         highlight=False)
        if outcome.status == "failed":
            stderr.print(f"[bold red]failed:[/] {outcome.error}", highlight=False)
        elif print_text and outcome.status in ("done", "skipped"):
            stderr.print(f"[bold]{outcome.input.path}[/] ({outcome.language})", highlight=False)
            sys.stdout.write(outcome.text + "\n")
            sys.stdout.flush()

    return report


def _conclude(summary: BatchSummary) -> None:
    """Print the summary table and exit with the batch's status (130 interrupted, 1 failed)."""
    stderr.print(summary_table(summary))
    if summary.interrupted:
        stderr.print("[yellow]interrupted:[/] run the same command again to resume; finished "
                     "files are kept and skipped.", highlight=False)
        raise typer.Exit(EXIT_INTERRUPTED)
    if summary.failed:
        raise typer.Exit(EXIT_FILES_FAILED)


def _term_mode(value: str) -> TermMode:
    return "hard" if value == "hard" else "soft" if value == "soft" else "none"


def _task(value: str) -> Task:
    return "translate" if value == "translate" else "transcribe"


def _device(value: str) -> Device:
    if value not in ("auto", "cpu", "cuda"):
        raise InvalidOptionError(f"--device must be auto, cpu or cuda, not {value!r}")
    return "cpu" if value == "cpu" else "cuda" if value == "cuda" else "auto"


