"""Numbers and units that a translation must carry over exactly ("500 mg", "2,5 ml", "38.5 °C").

A dose is the last thing an interpreter may get wrong. :func:`number_constraints` makes a
constraint of every number in a source text, with the unit that follows it when it is a
medical unit. The target keeps the digits and the unit; only the decimal separator changes
between languages that write "2,5" and languages that write "2.5" (a number with a single
separator followed by exactly three digits, like "1,000", is ambiguous and left as written).
"""

from __future__ import annotations

import re

from translate.types import TermConstraint

COMMA_DECIMAL = frozenset({"de", "fr", "es", "it", "pt", "nl", "pl", "ru", "uk", "tr", "vi",
                           "ro", "sv", "da", "nb", "no", "fi", "cs", "sk", "el", "id"})
"""Languages that write a decimal comma; the others here write a decimal point."""

UNITS = ("mg", "mcg", "µg", "μg", "ug", "g", "kg", "ng", "ml", "mL", "l", "L", "dl", "dL",
         "IU", "I.E.", "UI", "U", "mmol/l", "mmol/L", "mg/dl", "mg/dL", "mg/kg", "mmHg",
         "mm Hg", "%", "°C", "°F", "cm", "mm", "bpm", "mEq", "mSv", "Gy")
"""Units copied with their number (longest first when matching)."""

_UNIT = "|".join(re.escape(u) for u in sorted(UNITS, key=len, reverse=True))
_NUMBER = re.compile(rf"(?<![\w.,])(\d+(?:[.,]\d+)?)(\s?(?:{_UNIT}))?(?![\w])")


def convert_decimal(number: str, src_lang: str, tgt_lang: str) -> str:
    """``number`` with the target language's decimal separator (see the module docstring)."""
    source_comma = _primary(src_lang) in COMMA_DECIMAL
    target_comma = _primary(tgt_lang) in COMMA_DECIMAL
    separator = "," if source_comma else "."
    if source_comma == target_comma or separator not in number:
        return number
    whole, fraction = number.split(separator)
    if len(fraction) == 3:
        return number
    return f"{whole}{',' if target_comma else '.'}{fraction}"


def number_constraints(text: str, src_lang: str, tgt_lang: str,
                       start: int = 0, end: int | None = None) -> list[TermConstraint]:
    """A constraint for each number (with its unit) in ``text[start:end]``."""
    constraints = []
    for match in _NUMBER.finditer(text, start, len(text) if end is None else end):
        number, unit = match.group(1), match.group(2) or ""
        target = convert_decimal(number, src_lang, tgt_lang) + unit
        constraints.append(TermConstraint(match.group(0), target, match.start(), match.end(),
                                          origin="number"))
    return constraints


def _primary(language: str) -> str:
    return language.split("-")[0].split("_")[0].casefold()
