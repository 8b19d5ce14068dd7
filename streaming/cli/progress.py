"""The batch CLI's progress bar (files and audio minutes, with ETA) and its summary table."""

from __future__ import annotations

import threading

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from streaming.batch.job import BatchSummary, FileOutcome, InputFile, ProgressListener


class RichProgress(ProgressListener):
    """Draws one bar measured in audio minutes, with the file count beside it.

    The ETA comes from audio throughput, which predicts the remaining time far better than a
    file count when recordings differ in length.
    """

    def __init__(self, console: Console, files: int, audio_seconds: float) -> None:
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.fields[current]}", justify="left"),
            BarColumn(),
            TextColumn("{task.fields[files_done]}/{task.fields[files]} files"),
            TextColumn("{task.completed:.1f}/{task.total:.1f} audio min"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        )
        self.task: TaskID = self.progress.add_task(
            "transcribe", total=max(audio_seconds / 60, 1e-6), files=files, files_done=0,
            current="")
        self.files_done = 0
        self._advanced: dict[InputFile, float] = {}
        # Events arrive from every worker thread.
        self._lock = threading.Lock()

    def __enter__(self) -> RichProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def file_started(self, item: InputFile, duration: float | None) -> None:
        with self._lock:
            self._advanced[item] = 0.0
            self.progress.update(self.task, current=item.path.name)

    def audio_advanced(self, item: InputFile, seconds: float) -> None:
        with self._lock:
            self._advanced[item] = self._advanced.get(item, 0.0) + seconds
            self.progress.advance(self.task, seconds / 60)

    def file_finished(self, outcome: FileOutcome, duration: float | None) -> None:
        # Skipped and failed files still count as done: bring the bar to the file's full length.
        with self._lock:
            expected = duration if duration is not None else outcome.audio_seconds
            remaining = expected - self._advanced.pop(outcome.input, 0.0)
            if remaining > 0:
                self.progress.advance(self.task, remaining / 60)
            self.files_done += 1
            self.progress.update(self.task, files_done=self.files_done)


def summary_table(summary: BatchSummary) -> Table:
    """One row per file (status, language, minutes, speed, error) and a totals caption."""
    table = Table(title="medstream transcribe", show_lines=False)
    table.add_column("file", overflow="fold")
    table.add_column("status")
    table.add_column("lang")
    table.add_column("audio min", justify="right")
    table.add_column("x real time", justify="right")
    table.add_column("error", overflow="fold")
    styles = {"done": "green", "skipped": "cyan", "failed": "bold red", "interrupted": "yellow"}
    for o in summary.outcomes:
        speed = f"{o.audio_seconds / o.wall_seconds:.1f}" if o.wall_seconds and o.status == "done" \
            else ""
        table.add_row(str(o.input.path), f"[{styles[o.status]}]{o.status}", o.language or "",
                      f"{o.audio_seconds / 60:.2f}" if o.audio_seconds else "", speed,
                      o.error or "")
    done = [o for o in summary.outcomes if o.status == "done"]
    audio = sum(o.audio_seconds for o in done)
    wall = sum(o.wall_seconds for o in done)
    table.caption = (f"{summary.count('done')} transcribed, {summary.count('skipped')} skipped "
                     f"(already complete), {summary.count('failed')} failed"
                     + (f", {summary.count('interrupted')} interrupted" if summary.interrupted
                        else "") + "; "
                     f"{audio / 60:.1f} audio min in {wall:.0f} s"
                     + (f" ({audio / wall:.1f}x real time)" if wall else ""))
    return table
