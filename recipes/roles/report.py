"""The roles recipe's report: ``report.json`` (everything) and ``report.md`` (the tables)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

COLUMNS = (("dialogues", "dialogues"), ("speakers", "speakers"),
           ("speaker_accuracy", "speaker acc."), ("dialogue_accuracy", "all speakers right"),
           ("pair_accuracy", "main pair acc."), ("pair_confidence", "mean confidence"),
           ("pair_log_loss", "pair log-loss"), ("turns", "turns"),
           ("turn_accuracy", "turn acc. (3 roles)"), ("turn_accuracy_cp", "turn acc. (C/P)"))


FORMS = ("written", "spoken", "sentences", "sentences, spoken")
"""The text forms of the main table: turns as written or in spoken style, whole or cut into
sentences (one turn each, as ASR segments)."""


def write_reports(output: Path, report: dict[str, Any]) -> None:
    """Write ``report.json`` and a Markdown rendering of its results as ``report.md``."""
    (output / "report.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    (output / "report.md").write_text(markdown(report), encoding="utf-8")


def markdown(report: dict[str, Any]) -> str:
    """The results as one table (a row per data set and text form), then the settings."""
    lines = ["# Speaker roles: held-out results", "",
             "| data | form | " + " | ".join(title for _, title in COLUMNS) + " | extra right |",
             "|---|---|" + "---:|" * (len(COLUMNS) + 1)]
    for name, forms in report["results"].items():
        for form in FORMS:
            scores = forms[form]
            cells = [_cell(scores[key]) for key, _ in COLUMNS]
            extra = f"{scores['extra_correct']}/{scores['extra_speakers']}"
            lines.append(f"| {name} | {form} | " + " | ".join(cells) + f" | {extra} |")
    lines += ["", "First turns of each dialogue (as written): how roles and their confidence "
                  "hold as a conversation starts.", "",
              "| data | first turns | dialogues | speaker acc. | main pair acc. | "
              "mean confidence | pair log-loss |", "|---|---:|---:|---:|---:|---:|---:|"]
    for name, forms in report["results"].items():
        for count, scores in forms.get("first_turns", {}).items():
            cells = [_cell(scores[key]) for key in (
                "dialogues", "speaker_accuracy", "pair_accuracy", "pair_confidence",
                "pair_log_loss")]
            lines.append(f"| {name} | {count} | " + " | ".join(cells) + " |")
    lines += ["", "One short turn (1-4 words) of each dialogue split off as a third speaker, "
                  "whose role should be other:", "",
              "| data | dialogues | speaker acc. | main pair acc. | extra right |",
              "|---|---:|---:|---:|---:|"]
    for name, forms in report["results"].items():
        if "fragment" in forms:
            scores = forms["fragment"]
            cells = [_cell(scores[key]) for key in ("dialogues", "speaker_accuracy",
                                                    "pair_accuracy")]
            lines.append(f"| {name} | " + " | ".join(cells) +
                         f" | {scores['extra_correct']}/{scores['extra_speakers']} |")
    settings = report["settings"]
    lines += ["", f"C = {report['C']}, temperature = {settings['temperature']}, "
                  f"min_words = {settings['min_words']}, "
                  f"other_margin = {settings['other_margin']}", ""]
    return "\n".join(lines)


def _cell(value: float | int) -> str:
    if isinstance(value, int):
        return str(value)
    return "–" if math.isnan(value) else f"{value:.4f}"
