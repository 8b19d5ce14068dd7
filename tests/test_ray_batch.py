"""`medstream transcribe --ray`: the batch on a local Ray instance (2 CPUs) writes what the local
mode writes, reports the bad file, and a second run skips everything done."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from streaming.batch.ray_job import ActorPlan, RayUnavailableError
from streaming.cli.app import app
from tests.conftest import REPO, SPEECH

ray = pytest.importorskip("ray", reason="the ray extra is not installed")


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    """A Ray instance on this machine with 2 CPUs; `--ray local` joins it."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """Real recordings in nested folders, and one corrupt file."""
    sources = [SPEECH / "pocketsphinx_testdata/goforward.wav",
               SPEECH / "librispeech_wlk/7902-96591-0000.flac",
               REPO / "samples/osce_car0001_50s.mp3"]
    if not all(p.exists() for p in sources):
        pytest.skip("the shared speech data is absent")
    root = tmp_path / "recordings"
    (root / "ward-b").mkdir(parents=True)
    shutil.copy(sources[0], root / "goforward.wav")
    shutil.copy(sources[1], root / "ward-b/cutter.flac")
    shutil.copy(sources[2], root / "ward-b/consultation.mp3")
    (root / "corrupt.mp3").write_bytes(b"ID3" + bytes(range(256)) * 40)
    return root


def _invoke(args: list[str]) -> Result:
    return CliRunner().invoke(app, args, env={"COLUMNS": "300"})


def _files(out: Path) -> dict[str, bytes]:
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*"))
            if p.is_file()}


def test_ray_writes_what_the_local_mode_writes_and_resumes(local_ray: None, folder: Path,
                                                           tmp_path: Path) -> None:
    common = ["transcribe", str(folder), "--model", "tiny.en", "--language", "en", "--offline"]
    local = _invoke([*common, "--out", str(tmp_path / "local")])
    assert local.exit_code == 1, local.output  # 1: a file failed
    result = _invoke([*common, "--out", str(tmp_path / "ray"), "--ray", "local"])
    assert result.exit_code == 1, result.output
    assert "ray: 2 recogniser actor(s) on cpu" in result.output
    assert f"failed: cannot read audio from {folder / 'corrupt.mp3'}" in result.output
    assert "3 transcribed, 0 skipped (already complete), 1 failed" in result.output

    written = _files(tmp_path / "ray")
    assert sorted(written) == sorted(f"{stem}.{ext}" for stem in
                                     ("goforward", "ward-b/cutter", "ward-b/consultation")
                                     for ext in ("json", "srt", "txt", "vtt"))
    assert written == _files(tmp_path / "local")
    assert b"Go forward 10 meters." in written["goforward.txt"]

    stamps = {p: p.stat().st_mtime_ns for p in (tmp_path / "ray").rglob("*")}
    again = _invoke([*common, "--out", str(tmp_path / "ray"), "--ray", "local"])
    assert again.exit_code == 1, again.output
    assert "0 transcribed, 3 skipped (already complete), 1 failed" in again.output
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "ray").rglob("*")} == stamps


def test_entity_and_translation_actors_match_the_local_mode(local_ray: None, tmp_path: Path,
                                                            tiny_marian: Any) -> None:
    german = SPEECH / "fleurs_cuttledoc" / "fleurs-de-001.ogg"
    if not german.is_file():
        pytest.skip(f"{german} is absent")
    shutil.copy(german, tmp_path / "clip.ogg")
    common = ["transcribe", str(tmp_path / "clip.ogg"), "--model", "base", "--language", "de",
              "--offline", "--entities", "--translate-to", "en",
              "--mt-model", str(tiny_marian.ct2_dir), "--format", "json"]
    local = _invoke([*common, "--out", str(tmp_path / "local")])
    assert local.exit_code == 0, local.output
    result = _invoke([*common, "--out", str(tmp_path / "ray"), "--ray", "local"])
    assert result.exit_code == 0, result.output
    written = (tmp_path / "ray" / "clip.json").read_text(encoding="utf-8")
    assert written == (tmp_path / "local" / "clip.json").read_text(encoding="utf-8")
    assert '"ner"' in written and '"method": "text"' in written

    # Without --entities: the entities go and the translation is redone; not the transcript.
    plain = [a for a in common if a != "--entities"]
    again = _invoke([*plain, "--out", str(tmp_path / "ray"), "--ray", "local"])
    assert again.exit_code == 0, again.output
    assert '"ner"' not in (tmp_path / "ray" / "clip.json").read_text(encoding="utf-8")


def test_actor_plan_follows_the_cluster() -> None:
    cpu = ActorPlan.for_cluster({"CPU": 2.0}, "auto")
    assert (cpu.device, cpu.asr_actors, cpu.cpu_threads, cpu.asr_gpus) == ("cpu", 2, 1, 0.0)
    # What the actors leave free feeds the prepare tasks: no deadlock on a small machine.
    assert 2 - cpu.asr_actors * cpu.asr_cpus >= 2 * cpu.light_cpus
    four = ActorPlan.for_cluster({"CPU": 8.0}, "auto", actors=2)
    assert (four.asr_actors, four.cpu_threads) == (2, 4)
    crowded = ActorPlan.for_cluster({"CPU": 2.0}, "auto", actors=4)  # all four fit
    assert 2 - crowded.asr_actors * crowded.asr_cpus >= 2 * crowded.light_cpus
    gpu = ActorPlan.for_cluster({"CPU": 32.0, "GPU": 4.0}, "auto")
    assert (gpu.device, gpu.asr_actors) == ("cuda", 4)
    assert gpu.asr_gpus + 2 * gpu.light_gpus <= 1.0  # an NER and an MT actor fit beside one
    assert ActorPlan.for_cluster({"CPU": 32.0, "GPU": 4.0}, "cpu").device == "cpu"
    with pytest.raises(RayUnavailableError, match="no GPU"):
        ActorPlan.for_cluster({"CPU": 2.0}, "cuda")


def test_speakers_on_ray_match_the_local_mode(local_ray: None, tmp_path: Path) -> None:
    from tests.test_transcribe_speakers_e2e import CONSULTATION, _dialogue

    clip = _dialogue(tmp_path / "consultation.wav", CONSULTATION[:4])
    common = ["transcribe", str(clip), "--model", "tiny.en", "--language", "en", "--offline",
              "--speakers", "2", "--format", "json,txt"]
    local = _invoke([*common, "--out", str(tmp_path / "local")])
    assert local.exit_code == 0, local.output
    result = _invoke([*common, "--out", str(tmp_path / "ray"), "--ray", "local"])
    assert result.exit_code == 0, result.output
    assert _files(tmp_path / "ray") == _files(tmp_path / "local")
    lines = (tmp_path / "ray" / "consultation.txt").read_text().splitlines()
    assert [line.split(":")[0] for line in lines] == ["Clinician", "Patient"] * 2
