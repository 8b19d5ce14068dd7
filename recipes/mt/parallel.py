"""A team's own parallel text for the MT recipe (``train_files``, ``dev_file``): TSV or JSONL,
read for one direction ``src_lang`` → ``tgt_lang``.

* **TSV** (``.tsv``, or any suffix other than ``.jsonl``/``.ndjson``): one header line,
  tab-separated, no quoting (the shared data's convention, :mod:`eval.readers`). The two sides
  are the columns named by the language codes (``fr`` and ``en``, any case), or else ``src``
  and ``ref``. With ``src``/``ref``, optional ``src_lang``/``tgt_lang`` columns give each
  row's direction: a row of the reverse direction (``en``→``fr`` when reading ``fr``→``en``)
  is turned round, a row of another language pair is an error. Without them, ``src`` is taken
  to be in ``src_lang``. An ``id`` column, when present, names each pair.
* **JSONL** (``.jsonl``, ``.ndjson``): one object a line with the same keys: ``{"fr": …,
  "en": …}``, or ``{"src": …, "ref": …}`` with optional ``src_lang``/``tgt_lang`` and ``id``.

Language codes are compared by their primary subtag (``es-419`` is ``es``). Pairs with an
empty side are left out (and counted in the log). A file whose header (or line) has neither
pair of columns is a :class:`~speech.errors.DataFileError` naming the file and the columns it
found.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from eval.readers import tsv_rows
from recipes.mt.tiny_marian import DataSplit, ParallelPair
from speech.datafiles import json_lines, text_lines, type_name
from speech.errors import DataFileError

logger = logging.getLogger("recipes.mt")

JSONL_SUFFIXES = (".jsonl", ".ndjson")


def primary(code: str) -> str:
    """The primary language subtag: ``es-419`` → ``es``, ``zh_Hans`` → ``zh``."""
    return code.strip().replace("_", "-").split("-")[0].lower()


def read_parallel_file(path: str | Path, src_lang: str, tgt_lang: str) -> list[ParallelPair]:
    """The ``src_lang`` → ``tgt_lang`` pairs of a TSV or JSONL file (see the module
    docstring), in file order; ``origin`` is ``<file name>:<id or line>``."""
    file = Path(path)
    if not file.is_file():
        raise DataFileError(file, None, "no such file")
    if primary(src_lang) == primary(tgt_lang):
        raise ValueError(f"source and target language are both {src_lang!r}")
    jsonl = file.suffix.lower() in JSONL_SUFFIXES
    rows: Iterator[tuple[int, Mapping[str, Any]]] = (
        json_lines(file) if jsonl else _tsv_dicts(file, src_lang, tgt_lang))
    pairs: list[ParallelPair] = []
    empty = 0
    for number, row in rows:
        source, target = _sides(row, src_lang, tgt_lang, file, number)
        if not source.strip() or not target.strip():
            empty += 1
            continue
        ident = row.get("id")
        name = str(ident) if ident not in (None, "") else str(number)
        pairs.append(ParallelPair(source.strip(), target.strip(), f"{file.name}:{name}"))
    if empty:
        logger.info("%s: %d pair(s) with an empty side left out", file, empty)
    return pairs


def _tsv_dicts(file: Path, src_lang: str,
               tgt_lang: str) -> Iterator[tuple[int, dict[str, str]]]:
    lines = text_lines(file)
    if not lines:
        raise DataFileError(file, None, "the file is empty: expected a header line naming "
                                        "the language columns")
    header = [name.strip() for name in lines[0].split("\t")]
    if _columns(header, src_lang, tgt_lang) is None:
        raise _no_sides(file, 1, header, src_lang, tgt_lang, "the header")
    for number, fields in tsv_rows(file, lines, len(header)):
        yield number, dict(zip(header, fields, strict=True))


def _columns(names: Sequence[str], src_lang: str, tgt_lang: str) -> tuple[str, str] | None:
    """The (source, target) columns among ``names``: the language codes' (any case), else
    ``src`` and ``ref``; None when neither pair is there."""
    folded = {name.lower(): name for name in names}
    source, target = folded.get(src_lang.lower()), folded.get(tgt_lang.lower())
    if source is not None and target is not None:
        return source, target
    return ("src", "ref") if "src" in names and "ref" in names else None


def _no_sides(file: Path, line: int, names: Sequence[str], src_lang: str, tgt_lang: str,
              what: str) -> DataFileError:
    return DataFileError(file, line, f"cannot find the {src_lang} and {tgt_lang} sides: "
                         f"expected columns '{src_lang}' and '{tgt_lang}', or 'src' and 'ref' "
                         f"(with optional 'src_lang' and 'tgt_lang'); {what} has: "
                         f"{', '.join(names) or 'nothing'}")


def _sides(row: Mapping[str, Any], src_lang: str, tgt_lang: str, file: Path,
           line: int) -> tuple[str, str]:
    """(source, target) of one row, turned round when the row says it is the reverse."""
    columns = _columns(list(row), src_lang, tgt_lang)
    if columns is None:
        raise _no_sides(file, line, list(row), src_lang, tgt_lang, "this line")
    source, target = (_text(row, key, file, line) for key in columns)
    if columns != ("src", "ref") or "src_lang" not in row or "tgt_lang" not in row:
        return source, target
    direction = (primary(str(row["src_lang"])), primary(str(row["tgt_lang"])))
    if direction == (primary(src_lang), primary(tgt_lang)):
        return source, target
    if direction == (primary(tgt_lang), primary(src_lang)):
        return target, source
    raise DataFileError(file, line, f"a {row['src_lang']}→{row['tgt_lang']} pair, neither "
                                    f"{src_lang}→{tgt_lang} nor its reverse")


def _text(row: Mapping[str, Any], key: str, file: Path, line: int) -> str:
    value = row[key]
    if not isinstance(value, str):
        raise DataFileError(file, line, f"'{key}' must be a string, not {type_name(value)}")
    return value


def split_pairs(pairs: Sequence[ParallelPair], dev: Sequence[ParallelPair] | None,
                dev_segments: int, where: str) -> DataSplit:
    """Training pairs and a development set with distinct sources.

    The dev set is ``dev`` (one pair per source, the first) or, when None, the last
    ``dev_segments`` pairs of ``pairs`` with distinct sources; every pair whose source is a
    dev source is left out of training. ``where`` names the files in errors.
    """
    if dev is None:
        chosen: dict[str, ParallelPair] = {}
        for pair in reversed(pairs):
            if len(chosen) == dev_segments:
                break
            chosen.setdefault(pair.source, pair)
        if len(chosen) < dev_segments or len(chosen) == len({p.source for p in pairs}):
            raise ValueError(f"{where}: {len({p.source for p in pairs})} distinct sources, "
                             f"too few to hold out {dev_segments} dev pairs (lower "
                             "dev_segments or give a dev_file)")
        dev = list(reversed(chosen.values()))
    unique: dict[str, ParallelPair] = {}
    for pair in dev:
        unique.setdefault(pair.source, pair)
    held_out = set(unique)
    train = tuple(pair for pair in pairs if pair.source not in held_out)
    if not train:
        raise ValueError(f"{where}: no training pair left once the dev sources are held out")
    return DataSplit(train, tuple(unique.values()), ())
