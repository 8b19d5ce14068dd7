"""``medstream ner``: entities of a text, or of every line of a file (JSONL out).

Input files hold one text per line, or JSONL objects with a ``text`` field (any other fields
are carried over). Output is JSONL, one line per input line, in order, with each entity's
``start``, ``end`` (character offsets, end exclusive), ``text``, ``type`` and ``score``. A line
that cannot be read (bad JSON, no ``text``) gets an ``error`` field instead of entities, and
the rest of the file is still tagged; the exit status is then 1.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, TextIO

import typer
from rich.console import Console
from rich.table import Table

from ner.catalog import DEFAULT_NER_MODEL, resolve_ner_model
from ner.tagger import TaggerOptions, TransformerTagger
from ner.types import Entity
from speech.errors import MedstreamError

BATCH_LINES = 64
stderr = Console(stderr=True)


def entity_record(entity: Entity) -> dict[str, Any]:
    return {"start": entity.start, "end": entity.end, "text": entity.text,
            "type": entity.type.value, "score": round(entity.score, 4)}


def _records(lines: Iterator[str], jsonl: bool) -> Iterator[dict[str, Any]]:
    """Each input line as ``{"text": …}`` (plus its other fields), or ``{"error": …}``."""
    for number, line in enumerate(lines, 1):
        line = line.rstrip("\n").removesuffix("\r")
        if not jsonl:
            yield {"text": line}
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            yield {"line": number, "error": f"not valid JSON: {error.msg}"}
            continue
        if not isinstance(record, dict) or not isinstance(record.get("text"), str):
            yield {"line": number, "error": "expected a JSON object with a string 'text' field"}
            continue
        yield record


def tag_file(tagger: TransformerTagger, source: TextIO, sink: TextIO, jsonl: bool) -> int:
    """Tag every line of ``source`` into ``sink``; return how many lines had an error."""
    failed = 0
    pending: list[dict[str, Any]] = []

    def flush() -> None:
        texts = [r["text"] for r in pending if "error" not in r]
        found = iter(tagger.tag_batch(texts))
        for record in pending:
            if "error" not in record:
                record["entities"] = [entity_record(e) for e in next(found)]
            sink.write(json.dumps(record, ensure_ascii=False) + "\n")
        pending.clear()

    for record in _records(iter(source), jsonl):
        failed += "error" in record
        pending.append(record)
        if len(pending) >= BATCH_LINES:
            flush()
    flush()
    return failed


def ner_command(
    text: Annotated[str | None, typer.Argument(help="A text to tag (or use --input).")] = None,
    input_file: Annotated[Path | None, typer.Option("--input", "-i", help="One text per line, "
                                                    "or JSONL with a 'text' field.")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="JSONL to write "
                                                "(default: stdout).")] = None,
    model: Annotated[str, typer.Option(help="Shipped model name or model directory.")]
    = DEFAULT_NER_MODEL,
    device: Annotated[str, typer.Option(help="cpu or cuda.")] = "cpu",
) -> None:
    """Mark medications, conditions and anatomy in text."""
    if (text is None) == (input_file is None):
        stderr.print("[bold red]error:[/] give a TEXT or --input FILE", highlight=False)
        raise typer.Exit(2)
    try:
        tagger = TransformerTagger(resolve_ner_model(model).path, TaggerOptions(device=device))
    except MedstreamError as error:
        stderr.print(f"[bold red]error:[/] {error}", highlight=False)
        raise typer.Exit(2) from None
    if text is not None:
        table = Table("type", "text", "start", "end", "score")
        for entity in tagger.tag(text):
            table.add_row(entity.type.value, entity.text, str(entity.start), str(entity.end),
                          f"{entity.score:.2f}")
        Console().print(table)
        return
    assert input_file is not None
    try:
        source = input_file.open(encoding="utf-8")
    except OSError as error:
        stderr.print(f"[bold red]error:[/] cannot read {input_file}: {error.strerror}",
                     highlight=False)
        raise typer.Exit(2) from None
    jsonl = input_file.suffix.lower() in (".jsonl", ".ndjson")
    with source:
        if output is None:
            failed = tag_file(tagger, source, sys.stdout, jsonl)
        else:
            with output.open("w", encoding="utf-8") as sink:
                failed = tag_file(tagger, source, sink, jsonl)
    if failed:
        stderr.print(f"[yellow]{failed} line(s) could not be read; their output lines carry "
                     "an 'error' field.[/]", highlight=False)
        raise typer.Exit(1)
