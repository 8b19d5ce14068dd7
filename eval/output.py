"""A report on disk: ``report.json``, ``report.md`` and the PNG plots of its sections."""

from __future__ import annotations

from pathlib import Path

from eval.plots import plot_report
from eval.report import Report, render_markdown


def write_report(report: Report, folder: Path) -> list[Path]:
    """Write report.json, report.md and the plots into ``folder``; return the files written."""
    folder.mkdir(parents=True, exist_ok=True)
    plots = plot_report(report, folder)
    report.meta["plots"] = [p.name for p in plots]
    json_path = folder / "report.json"
    json_path.write_text(report.to_json(), encoding="utf-8")
    md_path = folder / "report.md"
    md_path.write_text(render_markdown(report), encoding="utf-8")
    return [json_path, md_path, *plots]
