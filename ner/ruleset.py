"""Per-language rule sets for medication attributes and negation, read from YAML data files.

Each language has one file ``ner/patterns/<language>.yaml`` (see ``en.yaml`` for a commented
example) with these keys:

- ``definitions``: named regular-expression fragments, used in patterns as ``{name}``
  (``{number}``, ``{unit}`` …); each is inserted as a non-capturing group.
- ``attributes``: for each :class:`~ner.schema.AttributeType` name, a list of regular
  expressions. They match case-insensitively, accent-insensitively (both pattern and text are
  compared without accents) and only as whole words.
- ``linking.max_words``: the most words between an attribute and the medication it is linked to.
- ``negation``: ``pre`` triggers (negate what follows: "no", "denies"), ``post`` triggers
  (negate what precedes: "was ruled out"), ``pseudo`` triggers (look like negation but are not:
  "not ruled out", "no increase"), ``terminators`` (end a scope: "but", "however") as plain
  phrases, and ``scope_words``, the longest scope in words.

The engine (:mod:`ner.rules`) is the same code for every language. :class:`DataFileError`
names the file and line of anything malformed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from ner.datafiles import DATA_DIR, LocatedDict, line_of, load_yaml
from ner.folding import primary_language, strip_accents
from ner.schema import AttributeType
from speech.errors import DataFileError, InvalidOptionError

PATTERN_DIR = DATA_DIR / "patterns"
"""Where the shipped rule files live: ``<language>.yaml``."""

_REFERENCE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_TOP_KEYS = {"language", "definitions", "attributes", "linking", "negation"}
_NEGATION_KEYS = {"scope_words", "pre", "post", "pseudo", "terminators"}
TRIGGER_KINDS = ("pre", "post", "pseudo", "terminators")


@dataclass(frozen=True)
class AttributePattern:
    """One compiled attribute pattern and where it was written (``file:line``)."""

    type: AttributeType
    regex: re.Pattern[str]
    origin: str


@dataclass(frozen=True)
class NegationRules:
    """Compiled NegEx triggers: one regex per kind (None when the kind has no phrase)."""

    pre: re.Pattern[str] | None
    post: re.Pattern[str] | None
    pseudo: re.Pattern[str] | None
    terminators: re.Pattern[str] | None
    scope_words: int


@dataclass(frozen=True)
class LanguageRules:
    """The attribute patterns, linking distance and negation triggers of one language."""

    language: str
    attributes: tuple[AttributePattern, ...]
    link_max_words: int
    negation: NegationRules
    source: Path


def available_languages() -> tuple[str, ...]:
    """The languages with a shipped rule file, sorted."""
    return tuple(sorted(path.stem for path in PATTERN_DIR.glob("*.yaml")))


@cache
def load_rules(language: str) -> LanguageRules:
    """The shipped rules for ``language`` (``en``, ``de-AT`` → ``de`` …), read once.

    InvalidOptionError names the available languages when there is no file for it.
    """
    code = primary_language(language)
    path = PATTERN_DIR / f"{code}.yaml"
    if not path.is_file():
        raise InvalidOptionError(f"no attribute/negation rules for language {language!r} "
                                 f"(available: {', '.join(available_languages())}); add "
                                 f"ner/patterns/{code}.yaml")
    return read_rules(path)


def read_rules(path: str | Path) -> LanguageRules:
    """Parse and compile a rule file; DataFileError (file and line) for anything malformed."""
    file = Path(path)
    data = load_yaml(file)
    _check_keys(file, data, _TOP_KEYS, "top level")
    language = data.get("language")
    if not isinstance(language, str) or not language:
        raise DataFileError(file, data.line, "'language' (a language code) is required")
    definitions = _definitions(file, data.get("definitions", LocatedDict()))
    attributes = _mapping(file, data.get("attributes", LocatedDict()), "attributes", data.line)
    compiled: list[AttributePattern] = []
    for name, patterns in attributes.items():
        line = line_of(name, attributes.line)
        if name not in AttributeType.__members__:
            raise DataFileError(file, line, f"unknown attribute type {name!r} (known: "
                                            f"{', '.join(AttributeType.__members__)})")
        for pattern in _strings(file, patterns, f"attributes.{name}", line):
            compiled.append(AttributePattern(
                AttributeType[name], _compile(file, pattern, definitions),
                f"{file}:{line_of(pattern, line)}"))
    linking = _mapping(file, data.get("linking", LocatedDict()), "linking", data.line)
    _check_keys(file, linking, {"max_words"}, "linking")
    return LanguageRules(primary_language(language), tuple(compiled),
                         _count(file, linking, "max_words", 12),
                         _negation(file, data.get("negation", LocatedDict()), data.line), file)


def phrase_regex(phrases: list[str]) -> re.Pattern[str] | None:
    """One case-insensitive regex for literal phrases, longest first, matched as whole words.

    Words may be separated by any whitespace and an apostrophe matches ' or ’; the text it
    runs on must have had its accents stripped (see :func:`ner.rules.fold_text`).
    """
    alternatives = []
    for phrase in sorted({strip_accents(p.strip()) for p in phrases}, key=len, reverse=True):
        body = r"\s+".join(re.escape(word).replace("'", "['’]") for word in phrase.split())
        left = r"(?<!\w)" if phrase[0].isalnum() else ""
        right = r"(?!\w)" if phrase[-1].isalnum() else ""
        alternatives.append(f"{left}{body}{right}")
    return re.compile("|".join(alternatives), re.IGNORECASE) if alternatives else None


def _negation(file: Path, value: object, parent_line: int | None) -> NegationRules:
    section = _mapping(file, value, "negation", parent_line)
    _check_keys(file, section, _NEGATION_KEYS, "negation")
    lists = {kind: [str(p) for p in _strings(file, section.get(kind, []), f"negation.{kind}",
                                              section.line)]
             for kind in TRIGGER_KINDS}
    for kind, phrases in lists.items():
        if any(not phrase.strip() for phrase in phrases):
            raise DataFileError(file, line_of(section.get(kind), section.line),
                                f"negation.{kind} holds an empty phrase")
    return NegationRules(phrase_regex(lists["pre"]), phrase_regex(lists["post"]),
                         phrase_regex(lists["pseudo"]), phrase_regex(lists["terminators"]),
                         _count(file, section, "scope_words", 5))


def _definitions(file: Path, value: object) -> dict[str, str]:
    section = _mapping(file, value, "definitions", None)
    definitions: dict[str, str] = {}
    for name, body in section.items():
        if not isinstance(body, str) or not _REFERENCE.fullmatch("{" + name + "}"):
            raise DataFileError(file, line_of(name, section.line),
                                f"definition {name!r} must be a name mapping to a regex string")
        definitions[name] = _expand(file, body, definitions)
    return definitions


def _expand(file: Path, pattern: str, definitions: dict[str, str]) -> str:
    """``pattern`` with each ``{name}`` replaced by its (earlier) definition, as a group."""
    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in definitions:
            raise DataFileError(file, line_of(pattern),
                                f"{{{name}}} is not defined (define it in 'definitions' "
                                f"above its first use)")
        return f"(?:{definitions[name]})"

    return _REFERENCE.sub(replace, pattern)


def _compile(file: Path, pattern: str, definitions: dict[str, str]) -> re.Pattern[str]:
    expanded = strip_accents(_expand(file, pattern, definitions))
    try:
        return re.compile(rf"(?<!\w)(?:{expanded})(?!\w)", re.IGNORECASE)
    except re.error as error:
        raise DataFileError(file, line_of(pattern),
                            f"invalid regular expression {str(pattern)!r}: {error}") from error


def _mapping(file: Path, value: object, what: str, parent_line: int | None) -> LocatedDict:
    if not isinstance(value, LocatedDict):
        raise DataFileError(file, line_of(value, parent_line), f"'{what}' must be a mapping")
    return value


def _strings(file: Path, value: object, what: str, parent_line: int | None) -> list[str]:
    if not isinstance(value, list):
        raise DataFileError(file, line_of(value, parent_line), f"'{what}' must be a list")
    for item in value:
        if not isinstance(item, str):
            raise DataFileError(file, line_of(value, parent_line),
                                f"'{what}' holds {item!r}, not a string (quote it)")
    return value


def _count(file: Path, section: LocatedDict, key: str, default: int) -> int:
    value = section.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise DataFileError(file, line_of(key, section.line),
                            f"'{key}' must be a whole number >= 1, not {value!r}")
    return value


def _check_keys(file: Path, section: LocatedDict, allowed: set[str], what: str) -> None:
    for key in section:
        if key not in allowed:
            raise DataFileError(file, line_of(key, section.line),
                                f"unknown key {key!r} in {what} (allowed: "
                                f"{', '.join(sorted(allowed))})")
