"""PNG plots of a report: error rate by utterance, entity F1 by type, latency distribution.

Each plot is drawn only when its section has the data; matplotlib runs headless (Agg).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.patches import Rectangle

from eval.report import Report, Section

_MAX_BARS = 60


def plot_report(report: Report, folder: Path) -> list[Path]:
    """Draw every plot the report has data for into ``folder``; return the files."""
    written = []
    for section in report.sections:
        for draw in (_error_rate_by_utterance, _entity_f1_by_type, _latency_distribution):
            path = draw(section, folder)
            if path is not None:
                written.append(path)
    return written


def _error_rate_by_utterance(section: Section, folder: Path) -> Path | None:
    rows = [item for item in section.items if isinstance(item.get("error_rate"), float | int)]
    if not rows:
        return None
    rows.sort(key=lambda item: item["error_rate"])
    if len(rows) > _MAX_BARS:  # keep the worst ones readable
        rows = rows[-_MAX_BARS:]
    languages = sorted({str(item.get("lang")) for item in rows})
    colours = {lang: plt.get_cmap("tab10")(i % 10) for i, lang in enumerate(languages)}
    figure, axes = plt.subplots(figsize=(8, 1.2 + 0.22 * len(rows)))
    axes.barh([str(item["id"]) for item in rows], [item["error_rate"] for item in rows],
              color=[colours[str(item.get("lang"))] for item in rows])
    unit = "/".join(sorted({str(item.get("unit", "WER")) for item in rows}))
    axes.set_xlabel(f"{unit} (%)")
    axes.set_title(f"{section.title}: {unit} by utterance"
                   + (f" (worst {_MAX_BARS})" if len(section.items) > _MAX_BARS else ""))
    axes.tick_params(axis="y", labelsize=7)
    handles = [Rectangle((0, 0), 1, 1, color=colours[lang]) for lang in languages]
    axes.legend(handles, languages, title="language", fontsize=7, loc="lower right")
    return _save(figure, folder / f"{section.name}_error_rate_by_utterance.png")


def _entity_f1_by_type(section: Section, folder: Path) -> Path | None:
    bars: list[tuple[str, str, float]] = []  # (label, type, F1)
    for row in section.rows:
        per_type: Any = row.score.details.get("per_type")
        if isinstance(per_type, dict):
            label = f"{row.subset} · {row.score.metric}"
            bars.extend((label, kind, 100 * prf["f1"]) for kind, prf in per_type.items())
    if not bars:
        return None
    labels = list(dict.fromkeys(label for label, _, _ in bars))
    types = sorted({kind for _, kind, _ in bars})
    figure, axes = plt.subplots(figsize=(max(6.0, 1.1 * len(types) * max(1, len(labels)) / 2),
                                         4.5))
    width = 0.8 / len(labels)
    for index, label in enumerate(labels):
        values = {kind: f1 for lab, kind, f1 in bars if lab == label}
        positions = [t + index * width for t in range(len(types))]
        axes.bar(positions, [values.get(kind, 0.0) for kind in types], width, label=label)
    axes.set_xticks([t + 0.4 - width / 2 for t in range(len(types))], types, fontsize=8)
    axes.set_ylabel("F1 (%)")
    axes.set_ylim(0, 100)
    axes.set_title(f"{section.title}: F1 by entity type")
    axes.legend(fontsize=7)
    return _save(figure, folder / f"{section.name}_entity_f1_by_type.png")


def _latency_distribution(section: Section, folder: Path) -> Path | None:
    series: dict[str, list[float]] = {}
    for item in section.items:
        for key, value in item.items():
            if key.startswith("latency:") and isinstance(value, float | int):
                series.setdefault(key.removeprefix("latency:"), []).append(float(value))
    if not series:
        return None
    figure, axes = plt.subplots(figsize=(7, 4))
    for name, values in series.items():
        axes.hist(values, bins=min(30, max(5, len(values) // 2)), alpha=0.6, label=name)
    axes.set_xlabel("seconds on the audio clock")
    axes.set_ylabel("utterances")
    axes.set_title(f"{section.title}: latency distribution")
    axes.legend(fontsize=8)
    return _save(figure, folder / f"{section.name}_latency.png")


def _save(figure: Any, path: Path) -> Path:
    figure.tight_layout()
    figure.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(figure)
    return path
