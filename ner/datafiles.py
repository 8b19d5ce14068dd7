"""Reading the NER stage's data files (YAML rule sets) with line numbers for error messages.

A pattern or inflection file is data a person edits, so a mistake in it must name the file and
line. :func:`load_yaml` parses with PyYAML's safe loader, but every mapping, list and string it
returns remembers the line it started on (:class:`Located`), and :class:`DataFileError` formats
``path:line: problem``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]  # PyYAML ships no stubs; transformers needs it

from speech.errors import DataFileError

DATA_DIR = Path(__file__).resolve().parent
"""The ``ner`` package folder: data files are found from here, never from the working dir."""


class Located:
    """Mixin: the 1-based line a YAML value started on (None when it was not read from YAML)."""

    line: int | None = None


class LocatedStr(str, Located):
    """A YAML string that knows its line."""


class LocatedDict(dict[str, Any], Located):
    """A YAML mapping that knows its line."""


class LocatedList(list[Any], Located):
    """A YAML sequence that knows its line."""


class _LineLoader(yaml.SafeLoader):  # type: ignore[misc]  # untyped base class
    """SafeLoader whose strings, mappings and lists carry their line numbers.

    YAML 1.1 reads an unquoted ``no``, ``yes``, ``on`` or ``off`` as a boolean; in word lists
    ("no", the negation trigger) that is a trap, so this loader reads them as strings.
    """


_LineLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _located_str(loader: _LineLoader, node: yaml.ScalarNode) -> LocatedStr:
    value = LocatedStr(loader.construct_scalar(node))
    value.line = node.start_mark.line + 1
    return value


def _located_dict(loader: _LineLoader, node: yaml.MappingNode) -> LocatedDict:
    value = LocatedDict(loader.construct_mapping(node, deep=True))
    value.line = node.start_mark.line + 1
    return value


def _located_list(loader: _LineLoader, node: yaml.SequenceNode) -> LocatedList:
    value = LocatedList(loader.construct_sequence(node, deep=True))
    value.line = node.start_mark.line + 1
    return value


_LineLoader.add_constructor("tag:yaml.org,2002:str", _located_str)
_LineLoader.add_constructor("tag:yaml.org,2002:map", _located_dict)
_LineLoader.add_constructor("tag:yaml.org,2002:seq", _located_list)


def load_yaml(path: Path) -> LocatedDict:
    """The top-level mapping of the YAML file ``path``; DataFileError when absent or invalid."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise DataFileError(path, None, f"cannot read the file ({error.strerror})") from error
    try:
        data = yaml.load(text, Loader=_LineLoader)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(error, "problem", None) or str(error)
        raise DataFileError(path, line, f"not valid YAML: {problem}") from error
    if not isinstance(data, LocatedDict):
        raise DataFileError(path, 1, "the file must be a YAML mapping (key: value lines)")
    return data


def line_of(value: object, default: int | None = None) -> int | None:
    """The line a YAML value came from, else ``default`` (numbers and booleans have none)."""
    return value.line if isinstance(value, Located) and value.line is not None else default
