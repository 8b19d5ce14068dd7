"""``medstream translate``: a text, or every line of a file, with the glossary honoured.

Input files hold one text per line, or JSONL objects with a ``text`` field and optionally
``src_lang``, ``tgt_lang`` (default ``--from``/``--to``) and ``terms`` (a list of
``{"source": …, "target": …}`` pairs this text must honour beyond the glossary; any other
fields are carried over). Output is JSONL, one line per input line, in order, with
``translation``, ``mode`` and ``terms`` (each constraint with ``satisfied``, ``lenient``,
``forced``, ``origin``). A line that cannot be read, or that the engine fails on, gets an
``error`` field instead, the rest is still translated, and the exit status is then 1. A line
longer than the model reads is translated in pieces (:mod:`translate.pieces`), joined.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, TextIO

import typer
from rich.console import Console
from rich.table import Table

from ner.folding import primary_language
from speech.errors import MedstreamError
from streaming.cli.console import fail
from streaming.cli.records import run_file, text_records, write_in_batches
from translate.catalog import BACKENDS, BackendName, load_mt_model
from translate.constraints import pair_constraints
from translate.defaults import PACKAGED_DIRECTIONS
from translate.failures import each_or_failure, failure_message
from translate.glossary import read_glossary
from translate.protocol import TextTranslator, make_translator
from translate.translator import Terminology
from translate.types import (
    REPAIR_MODES,
    TERM_MODES,
    TermMode,
    TranslateOptions,
    Translation,
)

BATCH_LINES = 32


def _problem(record: dict[str, Any]) -> str | None:
    for key in ("src_lang", "tgt_lang"):
        if key in record and not isinstance(record[key], str):
            return f"'{key}' must be a string"
    terms = record.get("terms", [])
    if not isinstance(terms, list) or not all(
            isinstance(t, dict) and isinstance(t.get("source"), str)
            and isinstance(t.get("target"), str) and t["target"].strip() for t in terms):
        return "'terms' must be a list of {\"source\": …, \"target\": …} objects"
    return None


def translate_file(translator: TextTranslator, source: TextIO, sink: TextIO, jsonl: bool,
                   src_lang: str, tgt_lang: str, options: TranslateOptions) -> int:
    """Translate every line of ``source`` into ``sink``; return how many lines had an error:
    could not be read, or the engine failed on them (such a line costs no other line its
    translation: :func:`~translate.failures.each_or_failure`)."""
    def annotate(records: list[dict[str, Any]]) -> None:
        groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for record in records:
            key = (record.get("src_lang", src_lang), record.get("tgt_lang", tgt_lang))
            groups.setdefault(key, []).append(record)
        for (src, tgt), group in groups.items():
            def run(batch: Sequence[dict[str, Any]], src: str = src,
                    tgt: str = tgt) -> list[Translation]:
                terms = [pair_constraints(r["text"], [(t["source"], t["target"])
                                                      for t in r.get("terms", [])], src)
                         for r in batch]
                return translator.translate([r["text"] for r in batch], src, tgt, options,
                                            terms)

            for record, result in zip(group, each_or_failure(group, run), strict=True):
                record.update({"error": f"translation failed: {failure_message(result)}"}
                              if isinstance(result, Exception) else _output(result))

    return write_in_batches(text_records(source, jsonl, _problem), sink, BATCH_LINES, annotate)


def _output(result: Translation) -> dict[str, Any]:
    data = result.to_dict()
    return {"translation": result.text, "src_lang": result.source_language,
            "tgt_lang": result.target_language, "mode": result.mode, "terms": data["terms"]}


def translate_command(
    text: Annotated[str | None, typer.Argument(help="A text to translate (or use --input).")]
    = None,
    source_language: Annotated[str, typer.Option("--from", help="Source language (ISO 639-1).")]
    = "en",
    target_language: Annotated[str, typer.Option("--to", help="Target language (ISO 639-1).")]
    = "en",
    model: Annotated[str | None, typer.Option(help="MT model: directory, packaged "
                                              "(bergamot-en-pt, bergamot-pt-en: the default "
                                              "for those directions), catalog name "
                                              "(nllb-200-distilled-600M, m2m100_418M, "
                                              "opus-mt-de-en …) or Hub id.")] = None,
    glossary: Annotated[list[Path] | None, typer.Option(help="Glossary (TSV, CSV or TBX); "
                                                        "repeatable, earlier ones win.")] = None,
    terms: Annotated[str, typer.Option(help="hard: every glossary term in the source appears "
                                       "in the output; soft: n-best reranked by terms; none.")]
    = "hard",
    input_file: Annotated[Path | None, typer.Option("--input", "-i", help="One text per line, "
                                                    "or JSONL with a 'text' field.")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="JSONL to write "
                                                "(default: stdout).")] = None,
    backend: Annotated[str, typer.Option(help="auto (CTranslate2), ctranslate2 or "
                                         "transformers.")] = "auto",
    device: Annotated[str, typer.Option(help="cpu or cuda.")] = "cpu",
    beam_size: Annotated[int, typer.Option(min=1)] = 4,
    repair: Annotated[str, typer.Option(help="Hard mode: replace the model's rendering of a "
                                        "missing term, or also continue decoding after the "
                                        "last forced term (slower).")] = "replace",
    numbers: Annotated[bool, typer.Option(help="Copy numbers and units exactly.")] = True,
    offline: Annotated[bool, typer.Option(help="Never contact the model hub.")] = False,
) -> None:
    """Translate with a medical glossary honoured, reporting every term."""
    if (text is None) == (input_file is None):
        raise fail("give a TEXT or --input FILE")
    if model is None:
        packaged = PACKAGED_DIRECTIONS.get((primary_language(source_language),
                                            primary_language(target_language)))
        if packaged is None:
            raise fail(f"--model is required for {source_language}→{target_language} (the "
                       "packaged pair translates en→pt and pt→en): a catalog name (see "
                       "`medstream translate --help`) or a directory (e.g. trained with "
                       "recipes/mt)")
        model = packaged.name
    if terms not in TERM_MODES:
        raise fail(f"--terms must be one of {', '.join(TERM_MODES)}, not {terms!r}")
    if backend not in BACKENDS:
        raise fail(f"--backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
    if repair not in REPAIR_MODES:
        raise fail(f"--repair must be one of {', '.join(REPAIR_MODES)}, not {repair!r}")
    options = TranslateOptions(terms=_mode(terms), beam_size=beam_size,
                               repair="continue" if repair == "continue" else "replace")
    try:
        entries = [e for path in glossary or [] for e in read_glossary(path)]
        translator = make_translator(load_mt_model(model, backend=_backend(backend),
                                                   device=device, allow_download=not offline),
                                     Terminology(entries, numbers=numbers))
    except MedstreamError as error:
        raise fail(str(error)) from None
    if text is not None:
        result = translator.translate([text], source_language, target_language, options)[0]
        sys.stdout.write(result.text + "\n")
        if result.terms:
            table = Table("source", "target", "satisfied", "forced", "origin")
            for use in result.terms:
                table.add_row(use.source, use.target, "yes" if use.satisfied else "NO",
                              "yes" if use.forced else "", use.origin)
            Console(stderr=True).print(table)
        return
    assert input_file is not None
    run_file(input_file, output, lambda source, sink, jsonl: translate_file(
        translator, source, sink, jsonl, source_language, target_language, options))


def _mode(value: str) -> TermMode:
    return "hard" if value == "hard" else "soft" if value == "soft" else "none"


def _backend(value: str) -> BackendName:
    return "ctranslate2" if value == "ctranslate2" else \
        "transformers" if value == "transformers" else "auto"
