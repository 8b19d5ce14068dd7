"""An evaluation report: scores with signatures, per-item rows, skipped metrics, and plots.

A report is one folder: ``report.json`` (everything, machine-readable; what ``compare``
reads), ``report.md`` (for people) and PNG plots. Two reports are compared metric by metric;
a pair whose signatures differ is flagged, since its numbers were not computed the same way.
"""

from __future__ import annotations

import json
import math
import platform
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from eval.metric import Score

REPORT_SCHEMA = "medstream.eval-report/1"


@dataclass(frozen=True)
class Row:
    """One figure of a section: a score on a subset of the data (``all``, a language, a corpus)."""

    subset: str
    score: Score


@dataclass
class Section:
    """One stage or task of the run (asr, ner, mt, terms, latency)."""

    name: str
    title: str
    rows: list[Row] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    """Metrics that could not run here, and why."""
    items: list[dict[str, Any]] = field(default_factory=list)
    """Per-utterance or per-segment rows (ids, texts, sentence-level figures)."""
    notes: list[str] = field(default_factory=list)

    def add(self, subset: str, score: Score) -> None:
        self.rows.append(Row(subset, score))


@dataclass
class Report:
    title: str
    sections: list[Section] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def new(cls, title: str, **meta: Any) -> Report:
        try:
            medstream = version("medstream")
        except PackageNotFoundError:  # pragma: no cover - running from a source tree
            medstream = "unknown"
        return cls(title, meta={"created": datetime.now(UTC).isoformat(timespec="seconds"),
                                "medstream": medstream, "python": platform.python_version(),
                                **meta})

    def section(self, name: str) -> Section | None:
        return next((s for s in self.sections if s.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        return {"schema": REPORT_SCHEMA, "title": self.title, "meta": self.meta,
                "sections": [asdict(s) for s in self.sections]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Report:
        if data.get("schema") != REPORT_SCHEMA:
            raise ValueError(f"not a medstream evaluation report (schema {data.get('schema')!r})")
        sections = [Section(name=s["name"], title=s["title"],
                            rows=[Row(r["subset"], Score(**r["score"])) for r in s["rows"]],
                            skipped=s["skipped"], items=s["items"], notes=s["notes"])
                    for s in data["sections"]]
        return cls(data["title"], sections, data["meta"])

    @classmethod
    def load(cls, path: Path) -> Report:
        """A report from its folder or its ``report.json``."""
        file = path / "report.json" if path.is_dir() else path
        try:
            return cls.from_dict(json.loads(file.read_text(encoding="utf-8")))
        except (OSError, json.JSONDecodeError, KeyError, TypeError) as error:
            raise ValueError(f"cannot read the report {file}: {error}") from error

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=1,
                          default=_json_default) + "\n"


def _json_default(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _number(value: float | None) -> str:
    return "–" if value is None or math.isnan(value) else f"{value:.2f}"


def render_markdown(report: Report) -> str:
    lines = [f"# {report.title}", ""]
    for key in ("created", "medstream", "command", "models", "data"):
        if key in report.meta:
            lines.append(f"- **{key}**: `{report.meta[key]}`")
    lines.append("")
    for section in report.sections:
        lines += [f"## {section.title}", ""]
        if section.rows:
            lines += ["| subset | metric | score | ± 95 % CI | details | signature |",
                      "|---|---|---:|---:|---|---|"]
            for row in section.rows:
                s = row.score
                arrow = "↑" if s.higher_is_better else "↓"
                ci = _number(s.ci) if s.ci is not None else ""
                lines.append(f"| {row.subset} | {s.metric} {arrow} | {_number(s.score)} | {ci} "
                             f"| {_brief(s.details)} | `{_cell(s.signature)}` |")
            lines.append("")
        per_type = [(row, row.score.details["per_type"]) for row in section.rows
                    if isinstance(row.score.details.get("per_type"), dict)
                    and row.score.details["per_type"]]
        if per_type:
            lines += ["Per type (precision / recall / F1, support):", "",
                      "| subset | metric | type | P | R | F1 | support |",
                      "|---|---|---|---:|---:|---:|---:|"]
            for row, types in per_type:
                for kind, prf in types.items():
                    lines.append(f"| {row.subset} | {row.score.metric} | {kind} "
                                 f"| {100 * prf['precision']:.2f} | {100 * prf['recall']:.2f} "
                                 f"| {100 * prf['f1']:.2f} | {prf['support']} |")
            lines.append("")
        for metric, reason in section.skipped.items():
            lines.append(f"- *{metric} skipped*: {reason}")
        for note in section.notes:
            lines.append(f"- {note}")
        if section.skipped or section.notes:
            lines.append("")
    plots = report.meta.get("plots", [])
    if plots:
        lines += ["## Plots", ""] + [f"![{p}]({p})" for p in plots] + [""]
    return "\n".join(lines)


def _cell(text: str) -> str:
    """Text safe inside a markdown table cell (GFM splits cells on unescaped pipes)."""
    return text.replace("|", "\\|")


def _brief(details: dict[str, Any]) -> str:
    """The scalar details of a score, short enough for a table cell."""
    shown = []
    for key, value in details.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        shown.append(f"{key} {value:.2f}" if isinstance(value, float) else f"{key} {value}")
    return ", ".join(shown)


@dataclass(frozen=True)
class Difference:
    section: str
    subset: str
    metric: str
    baseline: float | None
    system: float | None
    higher_is_better: bool
    same_signature: bool

    @property
    def delta(self) -> float | None:
        if self.baseline is None or self.system is None:
            return None
        return self.system - self.baseline

    @property
    def better(self) -> bool | None:
        delta = self.delta
        if delta is None or delta == 0:
            return None
        return (delta > 0) == self.higher_is_better


def compare_reports(baseline: Report, system: Report) -> list[Difference]:
    """Every (section, subset, metric) of either report, side by side."""
    def index(report: Report) -> dict[tuple[str, str, str], Score]:
        return {(s.name, r.subset, r.score.metric): r.score
                for s in report.sections for r in s.rows}

    base, other = index(baseline), index(system)
    keys = list(base) + [k for k in other if k not in base]
    differences = []
    for key in keys:
        a, b = base.get(key), other.get(key)
        reference = a or b
        assert reference is not None
        differences.append(Difference(
            section=key[0], subset=key[1], metric=key[2],
            baseline=a.score if a else None, system=b.score if b else None,
            higher_is_better=reference.higher_is_better,
            same_signature=a is not None and b is not None and a.signature == b.signature))
    return differences


def render_comparison(baseline: Report, system: Report, names: tuple[str, str]) -> str:
    lines = [f"# {names[1]} against {names[0]}", "",
             f"- baseline: {baseline.title} ({baseline.meta.get('created', '?')})",
             f"- system: {system.title} ({system.meta.get('created', '?')})", "",
             f"| section | subset | metric | {names[0]} | {names[1]} | Δ | |",
             "|---|---|---|---:|---:|---:|---|"]
    for d in compare_reports(baseline, system):
        delta = "" if d.delta is None else f"{d.delta:+.2f}"
        verdict = {True: "better", False: "worse", None: ""}[d.better]
        if d.baseline is not None and d.system is not None and not d.same_signature:
            verdict += " ⚠ signatures differ: not comparable"
        lines.append(f"| {d.section} | {d.subset} | {d.metric} | {_number(d.baseline)} "
                     f"| {_number(d.system)} | {delta} | {verdict.strip()} |")
    return "\n".join(lines) + "\n"
