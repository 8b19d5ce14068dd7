"""``medstream ner``: entities of a text, or of every line of a file (JSONL out).

Entities come from the transformer tagger (English), the built-in English lexicon and any
``--lexicon`` term lists, merged without overlaps; medication attributes and negation are
added by the rules of ``--language`` (see :mod:`ner.recognizer`).

Input files hold one text per line, or JSONL objects with a ``text`` field (any other fields
are carried over). Output is JSONL, one line per input line, in order, with each entity's
``start``, ``end`` (character offsets, end exclusive), ``text``, ``type`` and ``score``. A line
that cannot be read (bad JSON, no ``text``) gets an ``error`` field instead of entities, and
the rest of the file is still tagged; the exit status is then 1.

An abbreviation defined in a text ("chronic kidney disease (CKD)") takes its long form's type
in that text (:mod:`ner.abbreviations`); with ``--document`` the lines are read as one document
and a definition also applies to the lines after it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, TextIO

import typer
from rich.console import Console
from rich.table import Table

from ner.abbreviations import AbbreviationMemory
from ner.build import build_recognizer
from ner.catalog import DEFAULT_NER_MODEL
from ner.recognizer import EntityRecognizer
from speech.errors import MedstreamError
from streaming.cli.console import fail
from streaming.cli.records import run_file, text_records, write_in_batches

BATCH_LINES = 64


def tag_file(recognizer: EntityRecognizer, language: str, source: TextIO, sink: TextIO,
             jsonl: bool, document: bool = False) -> int:
    """Tag every line of ``source`` into ``sink``; return how many lines had an error. With
    ``document`` abbreviations defined on a line apply to the lines after it."""
    memory = AbbreviationMemory() if document else None

    def annotate(records: list[dict[str, Any]]) -> None:
        found = recognizer.recognize([r["text"] for r in records], language, memory)
        for record, entities in zip(records, found, strict=True):
            record["entities"] = [e.to_dict() for e in entities]

    return write_in_batches(text_records(source, jsonl), sink, BATCH_LINES, annotate)


def ner_command(
    text: Annotated[str | None, typer.Argument(help="A text to tag (or use --input).")] = None,
    input_file: Annotated[Path | None, typer.Option("--input", "-i", help="One text per line, "
                                                    "or JSONL with a 'text' field.")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="JSONL to write "
                                                "(default: stdout).")] = None,
    model: Annotated[str, typer.Option(help="Shipped model name or model directory.")]
    = DEFAULT_NER_MODEL,
    device: Annotated[str, typer.Option(help="cpu or cuda.")] = "cpu",
    language: Annotated[str, typer.Option(help="Language of the text (rules and lexicons; "
                                          "the tagger is English).")] = "en",
    lexicon: Annotated[list[Path] | None, typer.Option(help="Term list (TSV/CSV: term, type"
                                                       "[, code]) in --language; repeatable.")]
    = None,
    document: Annotated[bool, typer.Option(help="The lines of --input are one document: an "
                                           "abbreviation defined on a line applies to the "
                                           "lines after it.")] = False,
) -> None:
    """Mark medications (with dose, frequency, route…), conditions, anatomy and procedures."""
    if (text is None) == (input_file is None):
        raise fail("give a TEXT or --input FILE")
    try:
        recognizer = build_recognizer(model, device, language, lexicon or [])
    except MedstreamError as error:
        raise fail(str(error)) from None
    if text is not None:
        table = Table("type", "text", "start", "end", "score", "attributes")
        for entity in recognizer.recognize_one(text, language):
            details = [f"{a.type.value}: {a.text}" for a in entity.attributes]
            if entity.negated:
                details.insert(0, "negated")
            table.add_row(entity.type.value, entity.text, str(entity.start), str(entity.end),
                          f"{entity.score:.2f}", "; ".join(details))
        Console().print(table)
        return
    assert input_file is not None
    run_file(input_file, output,
             lambda source, sink, jsonl: tag_file(recognizer, language, source, sink, jsonl,
                                                  document))
