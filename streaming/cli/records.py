"""Line-oriented input files of the text commands (``medstream ner``, ``medstream translate``).

An input file holds one text per line, or (``.jsonl``/``.ndjson``) one JSON object per line
with a string ``text`` field and whatever else the command reads; output is JSONL, one line per
input line, in order. A line that cannot be read becomes ``{"line": N, "error": …}`` in the
output (one the command fails on gets an ``error`` field), the rest is still processed, and the
command exits with status 1.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TextIO

import typer

from streaming.cli.console import fail, stderr

EXIT_LINES_FAILED = 1

Check = Callable[[dict[str, Any]], str | None]
"""Says what is wrong with a parsed JSON record beyond its ``text`` (None: nothing)."""


def text_records(lines: Iterable[str], jsonl: bool,
                 check: Check | None = None) -> Iterator[dict[str, Any]]:
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
        problem = check(record) if check is not None else None
        yield {"line": number, "error": problem} if problem else record


def write_in_batches(records: Iterable[dict[str, Any]], sink: TextIO, batch: int,
                     annotate: Callable[[list[dict[str, Any]]], None]) -> int:
    """Write ``records`` as JSONL in input order, ``batch`` at a time; ``annotate`` adds its
    fields to the readable records of each batch (in place; an ``error`` field where it could
    not process one). Returns the error count."""
    failed = 0
    pending: list[dict[str, Any]] = []

    def flush() -> None:
        nonlocal failed
        annotate([r for r in pending if "error" not in r])
        for record in pending:
            failed += "error" in record
            sink.write(json.dumps(record, ensure_ascii=False) + "\n")
        pending.clear()

    for record in records:
        pending.append(record)
        if len(pending) >= batch:
            flush()
    flush()
    return failed


def run_file(input_file: Path, output: Path | None,
             process: Callable[[TextIO, TextIO, bool], int]) -> None:
    """Open ``input_file`` and ``output`` (stdout when None), run ``process(source, sink,
    jsonl)`` (which returns how many lines had an error) and exit 1 when any had."""
    try:
        source = input_file.open(encoding="utf-8")
    except OSError as error:
        raise fail(f"cannot read {input_file}: {error.strerror}") from None
    jsonl = input_file.suffix.lower() in (".jsonl", ".ndjson")
    with source:
        if output is None:
            failed = process(source, sys.stdout, jsonl)
        else:
            with output.open("w", encoding="utf-8") as sink:
                failed = process(source, sink, jsonl)
    if failed:
        stderr.print(f"[yellow]{failed} line(s) could not be read or processed; their output "
                     "lines carry an 'error' field.[/]", highlight=False)
        raise typer.Exit(EXIT_LINES_FAILED)
