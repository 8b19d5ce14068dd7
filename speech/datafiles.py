"""Data files a person writes (manifests, corpora, term lists, parallel text): their lines as
UTF-8 text and their JSON lines as objects, with :class:`DataFileError` naming the file and the
1-based line of whatever is wrong. Every reader of the stages and the evaluation reads through
here, so a file is read the same way everywhere: a byte-order mark is ignored, lines are split
on ``\\n`` only (``\\r\\n`` accepted), never on the other Unicode line separators."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from speech.errors import DataFileError


def text_lines(path: Path) -> list[str]:
    """The file's lines without terminators (no trailing empty line for a final newline)."""
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DataFileError(path, line, f"not valid UTF-8 ({exc.reason})") from exc
    lines = [line.removesuffix("\r") for line in text.split("\n")]
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def type_name(value: object) -> str:
    return "null" if value is None else type(value).__name__


def json_lines(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line of a JSONL file."""
    for number, line in enumerate(text_lines(path), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataFileError(path, number, f"not valid JSON: {exc.msg} "
                                                f"(column {exc.colno})") from exc
        if not isinstance(obj, dict):
            raise DataFileError(path, number,
                                  f"expected a JSON object, found a {type_name(obj)}")
        yield number, obj
