"""Words with character offsets, and the keys the lexicon matches them on.

**Words.** :func:`words` splits a text into maximal runs of letters and digits (Unicode
``\\w`` without ``_``); each Chinese/Japanese character is a word of its own, since those
scripts put no spaces between words. Offsets are into the original text, so nothing that
happens to a word's key (normalisation can change its length) moves an entity's span. Each word
records whether the gap before it is *hard*: a comma, semicolon, colon, ``!``/``?``, a full
stop followed by a space, or a line break. A term never matches across a hard gap ("chest.
Pain" is not "chest pain"), while hyphens, apostrophes, slashes and brackets are soft
("alcohol-based" = "alcohol based", "l'asthme" holds "asthme").

**Keys.** :class:`Folder` turns a word into its key: NFKC, casefold, optionally accents
stripped (NFD, combining marks dropped), then the language's inflection rules
(``lexicons/inflections.yaml``, see :class:`Inflection`).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from ner.datafiles import DATA_DIR, LocatedDict, line_of, load_yaml
from speech.errors import DataFileError

INFLECTIONS_FILE = DATA_DIR / "lexicons" / "inflections.yaml"

_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_WORD = re.compile(rf"[{_CJK}]|(?:(?![{_CJK}])[^\W_])+")
_HARD_GAP = re.compile(r"[,;:!?\n]|\.\s")


@dataclass(frozen=True)
class Word:
    """``text[start:end]`` is one word; ``hard_before``: a hard gap separates it from the last."""

    start: int
    end: int
    text: str
    hard_before: bool


def words(text: str) -> Iterator[Word]:
    """The words of ``text`` with their offsets, left to right (see the module docstring)."""
    previous_end = 0
    for match in _WORD.finditer(text):
        gap = text[previous_end:match.start()]
        yield Word(match.start(), match.end(), match.group(), bool(_HARD_GAP.search(gap)))
        previous_end = match.end()


def primary_language(language: str) -> str:
    """The primary subtag of a language code, lower-cased (``en-US`` → ``en``)."""
    return language.replace("_", "-").split("-", 1)[0].casefold()


@dataclass(frozen=True)
class InflectionRule:
    """Replace ``suffix`` by ``replace`` unless the word ends with one of ``unless``."""

    suffix: str
    replace: str = ""
    unless: tuple[str, ...] = ()


@dataclass(frozen=True)
class Inflection:
    """A language's suffix folding: the first applicable rule wins, once per word."""

    language: str
    min_stem: int
    rules: tuple[InflectionRule, ...]

    def fold(self, word: str) -> str:
        """The inflection key of an already casefolded ``word`` (words with digits unchanged)."""
        if any(character.isdigit() for character in word):
            return word
        for rule in self.rules:
            stem = len(word) - len(rule.suffix)
            if (stem >= self.min_stem and word.endswith(rule.suffix)
                    and not any(word.endswith(other) for other in rule.unless)):
                return word[:stem] + rule.replace
        return word


NO_INFLECTION = Inflection("", 0, ())
"""Folding for a language without rules: words are left as they are."""


def strip_accents(text: str) -> str:
    """``text`` without combining marks (``é`` → ``e``, ``ü`` → ``u``; ``ß`` is kept)."""
    decomposed = unicodedata.normalize("NFD", text)
    kept = "".join(c for c in decomposed if not unicodedata.combining(c))
    return unicodedata.normalize("NFC", kept)


class Folder:
    """Turns words of one language into matching keys (see the module docstring)."""

    def __init__(self, language: str, accents: bool = True, inflections: bool = True) -> None:
        """``accents=False`` matches accent-insensitively; ``inflections=False`` turns off
        the suffix rules (exact word forms only)."""
        self.language = primary_language(language)
        self.accents = accents
        self.inflection = (inflection_rules().get(self.language, NO_INFLECTION) if inflections
                           else NO_INFLECTION)
        self._cache: dict[str, str] = {}

    def normalize(self, text: str) -> str:
        """NFKC + casefold (+ accents stripped when the folder ignores accents)."""
        folded = unicodedata.normalize("NFKC", text).casefold()
        return folded if self.accents else strip_accents(folded)

    def key(self, word: str) -> str:
        """The key of one word: normalised, then inflection-folded (memoised)."""
        cached = self._cache.get(word)
        if cached is None:
            cached = self.inflection.fold(self.normalize(word))
            self._cache[word] = cached
        return cached


@lru_cache(maxsize=1)
def inflection_rules() -> dict[str, Inflection]:
    """The inflection rules of ``lexicons/inflections.yaml`` by language."""
    return read_inflections(INFLECTIONS_FILE)


def read_inflections(path: str | Path) -> dict[str, Inflection]:
    """Parse an inflection file (see ``lexicons/inflections.yaml``); DataFileError if malformed."""
    file = Path(path)
    data = load_yaml(file)
    result: dict[str, Inflection] = {}
    for language, body in data.items():
        if not isinstance(body, LocatedDict):
            raise DataFileError(file, line_of(body, data.line),
                                f"language {language!r} must map to min_stem and rules")
        min_stem = body.get("min_stem", 3)
        if not isinstance(min_stem, int) or min_stem < 1:
            raise DataFileError(file, body.line, f"{language}: min_stem must be an integer >= 1")
        rules = body.get("rules")
        if not isinstance(rules, list):
            raise DataFileError(file, body.line, f"{language}: 'rules' must be a list")
        result[primary_language(language)] = Inflection(
            primary_language(language), min_stem,
            tuple(_rule(file, language, rule, body.line) for rule in rules))
    return result


def _rule(file: Path, language: str, rule: object, fallback: int | None) -> InflectionRule:
    line = line_of(rule, fallback)
    if not isinstance(rule, dict) or not isinstance(rule.get("suffix"), str) or not rule["suffix"]:
        raise DataFileError(file, line, f"{language}: each rule needs a non-empty 'suffix'")
    unknown = set(rule) - {"suffix", "replace", "unless"}
    if unknown:
        raise DataFileError(file, line, f"{language}: unknown rule keys {sorted(unknown)}")
    replace = rule.get("replace", "")
    unless = rule.get("unless", [])
    if not isinstance(replace, str) or not isinstance(unless, list) or not all(
            isinstance(item, str) for item in unless):
        raise DataFileError(file, line,
                            f"{language}: 'replace' must be a string and 'unless' a list of them")
    return InflectionRule(rule["suffix"], replace, tuple(unless))
