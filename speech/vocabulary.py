"""Medical vocabulary lists used to bias recognition towards the terms a clinic uses."""

from __future__ import annotations

import csv
from pathlib import Path

from speech.errors import VocabularyError

_TERM_COLUMNS = ("term", "src_term", "source", "source_term", "name", "word")

MAX_PROMPT_CHARS = 600
"""Whisper reads at most ~223 prompt tokens; about 600 characters of terms stay under that."""


def load_vocabulary(path: str | Path) -> tuple[str, ...]:
    """Read a term list: plain text (one term per line, ``#`` comments) or TSV/CSV with a header.

    For TSV/CSV the term column is the first of ``term``, ``src_term``, ``source``,
    ``source_term``, ``name``, ``word`` present, or else the first column. Duplicates
    (case-insensitive) are dropped; order is kept, since earlier terms win when the list is
    longer than the prompt budget.
    """
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8-sig")
    except FileNotFoundError as exc:
        raise VocabularyError(f"vocabulary file {file} does not exist") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise VocabularyError(f"cannot read vocabulary file {file} as UTF-8 text: {exc}") from exc
    if file.suffix.lower() in {".tsv", ".csv"}:
        terms = _read_table(text, "\t" if file.suffix.lower() == ".tsv" else ",")
    else:
        terms = [line.strip() for line in text.splitlines()]
        terms = [t for t in terms if t and not t.startswith("#")]
    seen: set[str] = set()
    result = []
    for term in terms:
        if term.casefold() not in seen:
            seen.add(term.casefold())
            result.append(term)
    if not result:
        raise VocabularyError(f"vocabulary file {file} contains no terms")
    return tuple(result)


def _read_table(text: str, delimiter: str) -> list[str]:
    rows = list(csv.reader(text.splitlines(), delimiter=delimiter))
    if not rows:
        return []
    header = [h.strip().lower() for h in rows[0]]
    column = next((header.index(c) for c in _TERM_COLUMNS if c in header), 0)
    return [row[column].strip() for row in rows[1:] if len(row) > column and row[column].strip()]


def hotwords(terms: tuple[str, ...], max_chars: int = MAX_PROMPT_CHARS) -> str | None:
    """Join terms into Whisper's hotword prompt, keeping whole terms within ``max_chars``."""
    kept: list[str] = []
    size = 0
    for term in terms:
        if size + len(term) + 2 > max_chars:
            break
        kept.append(term)
        size += len(term) + 2
    return ", ".join(kept) if kept else None
