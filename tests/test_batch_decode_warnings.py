"""A batch with truncated, damaged and corrupt recordings (issue 24): a truncated file is
transcribed and its record says so with both durations, a corrupt one fails and the batch
goes on. The job layer runs with a recogniser that needs no model; the CLI with tiny.en."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from speech.audio import SAMPLE_RATE
from speech.chunking import Span
from speech.options import TranscribeOptions
from speech.types import Segment, TranscriptionInfo
from streaming.batch.job import BatchJob, BatchTranscriber, discover_inputs
from streaming.cli.app import app
from tests.conftest import REPO, SPEECH

MP3 = REPO / "samples" / "osce_car0001_50s.mp3"


class _Counting:
    """A recogniser that says how much audio it was given."""

    identifier = "counting"
    reproducibility_key = "counting"
    multilingual = False

    def check(self, options: TranscribeOptions) -> None:
        pass

    def transcribe(self, audio: np.ndarray, options: TranscribeOptions,
                   speech: Sequence[Span] | None = None
                   ) -> tuple[Iterator[Segment], TranscriptionInfo]:
        seconds = len(audio) / SAMPLE_RATE
        return iter([Segment(0, 0.0, seconds, f"{seconds:.1f} seconds")]), TranscriptionInfo(
            language="en", language_probability=1.0, duration=seconds,
            duration_after_vad=seconds, task="transcribe", model="counting")

    def detect_language(self, audio: np.ndarray) -> list[tuple[str, float]]:
        return [("en", 1.0)]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "recordings"
    root.mkdir()
    data = MP3.read_bytes()
    (root / "whole.mp3").write_bytes(data)
    (root / "half.mp3").write_bytes(data[:len(data) // 2])
    flac = (SPEECH / "jfk_inaugural" / "jfk.flac").read_bytes()
    (root / "half.flac").write_bytes(flac[:len(flac) // 2])
    (root / "corrupt.mp3").write_bytes(b"ID3" + bytes(range(256)) * 40)
    return root


def test_truncated_files_are_transcribed_and_their_records_say_so(folder: Path,
                                                                  tmp_path: Path) -> None:
    inputs, _ = discover_inputs([folder])
    job = BatchJob(out_dir=tmp_path / "out", options=TranscribeOptions(language="en"))
    outcomes = {o.input.path.name: o for o in BatchTranscriber(_Counting(), job).run(inputs)
                .outcomes}
    assert outcomes["whole.mp3"].status == "done" and outcomes["whole.mp3"].warning is None
    half = outcomes["half.mp3"]
    assert half.status == "done" and half.warning is not None
    assert re.search(r"truncated: decoded 2\d\.\d s of the 50\.0 s", half.warning)
    assert half.text == f"{half.audio_seconds:.1f} seconds"  # what could be decoded
    written = tmp_path / "out" / "half.mp3.json"  # two halves: the stems keep the extension
    assert json.loads(written.read_text())["segments"]
    assert "of the 11.0 s" in (outcomes["half.flac"].warning or "")
    assert outcomes["corrupt.mp3"].status == "failed"  # and the batch went on


@pytest.mark.slow
def test_the_cli_warns_about_a_truncated_file_and_reports_a_corrupt_one(folder: Path,
                                                                        tmp_path: Path) -> None:
    for name in ("whole.mp3", "half.flac"):
        (folder / name).unlink()
    result = CliRunner().invoke(app, ["transcribe", str(folder), "--out", str(tmp_path / "o"),
                                      "--model", "tiny.en", "--language", "en"],
                                env={"COLUMNS": "300"})
    assert result.exit_code == 1, result.output  # the corrupt file failed
    stderr = " ".join(result.stderr.split())
    assert re.search(r"warning: \S*half\.mp3: truncated: decoded 2\d\.\d s of the 50\.0 s",
                     stderr), stderr
    assert re.search(r"failed: cannot read audio from \S*corrupt\.mp3", stderr)
    assert (tmp_path / "o" / "half.txt").read_text().strip()
