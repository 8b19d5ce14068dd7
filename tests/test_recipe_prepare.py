"""Data preparation into manifests (recipes/prepare.py) on real recordings copied into each
source layout: a folder of audio + transcripts, a Common Voice TSV, a Hugging Face dataset saved
to disk and the MultiMed / MultiMed-ST layouts. Every problem is reported, the good entries kept."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from recipes.manifests import Entry, Problem, rate_outliers, read_manifest
from recipes.prepare import (
    PrepareError,
    from_common_voice,
    from_folder,
    from_hf_dataset,
    from_multimed,
    main,
    report,
)
from tests.conftest import REPO, SPEECH
from tests.conftest import read_manifest as shared_rows


def _kinds(problems: list[Problem]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for problem in problems:
        counts[problem.kind] = counts.get(problem.kind, 0) + 1
    return counts


def _copy(row: dict[str, Any], folder: Path, name: str | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copy(row["path"], folder / (name or row["path"].name)))


def _by_name(folder: str) -> dict[str, dict[str, Any]]:
    return {row["path"].name: row for row in shared_rows(folder)}


def _m4a(source: Path, target: Path) -> Path:
    """An AAC .m4a copy of ``source`` (libsndfile cannot read it, PyAV can)."""
    import av

    samples, rate = sf.read(str(source), dtype="float32")
    with av.open(str(target), "w") as container:
        stream = container.add_stream("aac", rate=rate)
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="flt", layout="mono")
        frame.sample_rate = rate
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)
    return target


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """A folder corpus: .lab and .txt sidecars in subfolders, a Kaldi ``text`` file, an .m4a,
    one audio file without transcript and one transcript line without audio."""
    mfa, asterisk = _by_name("mfa_test_data"), shared_rows("asterisk_prompts")
    root = tmp_path / "corpus"
    for name in ("61-70968-0000.flac", "mfa_apex.flac"):
        path = _copy(mfa[name], root / "lab")
        path.with_suffix(".lab").write_text(mfa[name]["text"] + "\n", encoding="utf-8")
    path = _copy(asterisk[0], root / "txt")
    path.with_suffix(".txt").write_text(asterisk[0]["text"], encoding="utf-8")
    _copy(mfa["common_voice_en_22058266.mp3"], root / "kaldi")
    _m4a(asterisk[1]["path"], root / "kaldi" / "prompt.m4a")
    (root / "text").write_text("common_voice_en_22058266 Fire fox\n"
                               f"prompt\t{asterisk[1]['text']}\nghost no audio here\n",
                               encoding="utf-8")
    _copy(asterisk[2], root / "orphan")
    return root


def test_folder_pairs_audio_with_sidecar_and_kaldi_transcripts(corpus: Path,
                                                               tmp_path: Path) -> None:
    mfa, asterisk = _by_name("mfa_test_data"), shared_rows("asterisk_prompts")
    entries, problems = from_folder(corpus, "en", tmp_path / "converted")
    got = {e.audio_filepath.name: e for e in entries}
    assert sorted(got) == ["000002-prompt.wav", "61-70968-0000.flac",
                           "agent-alreadyon.wav", "common_voice_en_22058266.mp3",
                           "mfa_apex.flac"]
    for name in ("61-70968-0000.flac", "mfa_apex.flac", "common_voice_en_22058266.mp3"):
        assert (got[name].text, got[name].duration) == (mfa[name]["text"], mfa[name]["duration"])
        assert got[name].lang == "en" and got[name].audio_filepath.is_absolute()
    assert got["agent-alreadyon.wav"].text == asterisk[0]["text"]
    assert got["agent-alreadyon.wav"].duration == asterisk[0]["duration"]
    converted = got["000002-prompt.wav"]
    assert converted.text == asterisk[1]["text"]
    assert converted.extra["source_audio"] == str(corpus / "kaldi" / "prompt.m4a")
    assert sf.info(str(converted.audio_filepath)).samplerate == 16_000
    assert converted.duration == pytest.approx(asterisk[1]["duration"], abs=0.3)
    assert _kinds(problems) == {"no transcript": 1, "transcript without audio": 1}
    assert next(p for p in problems if p.kind == "no transcript").audio == str(
        corpus / "orphan" / asterisk[2]["path"].name)
    assert {(p.audio, p.line) for p in problems if p.kind == "transcript without audio"} == {
        (str(corpus / "text"), 3)}

    kept, refused = from_folder(corpus, "en")  # without a folder, the .m4a cannot be converted
    assert len(kept) == 4 and _kinds(refused)["needs conversion"] == 1


def test_common_voice_tsv_reports_missing_corrupt_and_empty_rows(tmp_path: Path) -> None:
    mfa = _by_name("mfa_test_data")
    clips = [mfa[f"common_voice_en_2205826{n}.mp3"] for n in (4, 6, 7)]
    for row in clips:
        _copy(row, tmp_path / "cv" / "clips")
    (tmp_path / "cv" / "clips" / "corrupt.mp3").write_bytes(b"ID3 but not an mp3 at all")
    header = "client_id\tpath\tsentence\tup_votes\tdown_votes\tage\tgender\taccents\tlocale\t" \
             "segment"
    lines = [header, *(f"spk{i}\t{row['path'].name}\t{row['text']}\t2\t0\ttwenties\t\t\ten\t"
                       for i, row in enumerate(clips)),
             "spk9\tmissing.mp3\tgone\t2\t0\t\t\t\ten\t",
             "spk9\tcorrupt.mp3\tbroken\t2\t0\t\t\t\ten\t",
             f"spk9\t{clips[0]['path'].name}\t\t2\t0\t\t\t\ten\t",
             'spk9\tshort.mp3\t"unbalanced quote']
    tsv = tmp_path / "cv" / "validated.tsv"
    tsv.write_text("\n".join(lines) + "\n", encoding="utf-8")
    entries, problems = from_common_voice(tsv, lang="xx")
    assert [(e.audio_filepath.name, e.text, e.duration, e.lang) for e in entries] == [
        (row["path"].name, row["text"], row["duration"], "en") for row in clips]
    assert [e.extra for e in entries] == [{"speaker": f"spk{i}", "age": "twenties"}
                                          for i in range(3)]
    assert {(p.line, p.kind) for p in problems} == {
        (5, "audio file missing"), (6, "unreadable audio"), (7, "empty text"),
        (8, "malformed row")}
    with pytest.raises(PrepareError, match="no column sentence"):
        from_common_voice(_write(tmp_path / "bad.tsv", "client_id\tpath\n"))


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_hf_dataset_from_disk_is_decoded_to_16k_wav_with_translations(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    asterisk = shared_rows("asterisk_prompts")
    fleurs = _by_name("fleurs_cuttledoc")["fleurs-en-000.ogg"]
    es = {row["prompt_id"]: row["text"] for row in asterisk if row["lang"] == "es"}
    english = [row for row in asterisk if row["lang"] == "en"][:2]
    rows = [*english, fleurs]
    table = {"audio": [str(row["path"]) for row in rows] + [str(rows[0]["path"])],
             "transcription": [row["text"] for row in rows] + [" "],
             "speaker": ["allison", "allison", "fleurs", "x"],
             "text_es": [es[english[0]["prompt_id"]], es[english[1]["prompt_id"]], "", ""]}
    dataset = datasets.Dataset.from_dict(table).cast_column("audio", datasets.Audio())
    dataset = datasets.concatenate_datasets([dataset, datasets.Dataset.from_dict(
        {"audio": [{"bytes": b"RIFF junk", "path": "junk.wav"}], "transcription": ["junk"],
         "speaker": ["y"], "text_es": [""]}).cast_column("audio", datasets.Audio())])
    datasets.DatasetDict({"test": dataset}).save_to_disk(str(tmp_path / "ds"))

    audio_dir = tmp_path / "audio"
    entries, problems = from_hf_dataset(str(tmp_path / "ds"), "test", audio_dir=audio_dir,
                                        lang="en")
    assert [e.text for e in entries] == [row["text"] for row in rows]
    assert [e.audio_filepath for e in entries] == [
        (audio_dir / f"test-00000{i}.wav").resolve() for i in range(3)]
    for entry, row in zip(entries, rows, strict=True):
        info = sf.info(str(entry.audio_filepath))
        assert (info.samplerate, info.channels) == (16_000, 1)
        assert entry.duration == pytest.approx(row["duration"], abs=0.02)
        assert entry.lang == "en"
    assert entries[0].extra == {"speaker": "allison",
                                "translation_es": es[english[0]["prompt_id"]]}
    assert entries[2].extra == {"speaker": "fleurs"}
    assert {(p.line, p.kind) for p in problems} == {(4, "empty text"), (5, "unreadable audio")}

    arrays = datasets.Dataset.from_dict({"audio": [{"array": np.zeros((2, 8000), np.float32),
                                                    "sampling_rate": 8000}],
                                         "sentence": ["silence"]})
    arrays.save_to_disk(str(tmp_path / "arrays"))
    (entry,), none = from_hf_dataset(str(tmp_path / "arrays"), audio_dir=audio_dir)
    assert (entry.duration, entry.text, none) == (1.0, "silence", [])
    with pytest.raises(PrepareError, match="splits"):
        from_hf_dataset(str(tmp_path / "ds"), "train", audio_dir=audio_dir)
    with pytest.raises(PrepareError, match="cannot load"):  # HF_HUB_OFFLINE=1 (conftest)
        from_hf_dataset("medstream-tests/no-such-dataset", audio_dir=audio_dir)


def _multimed_root(tmp_path: Path) -> tuple[Path, list[dict[str, Any]], dict[str, dict[str, str]]]:
    """ROOT/en/train.jsonl + ROOT/en/audio from asterisk's English prompts, translated by the
    Spanish and French prompts with the same id (the French one under the hub's column name)."""
    asterisk = shared_rows("asterisk_prompts")
    text = {lang: {r["prompt_id"]: r["text"] for r in asterisk if r["lang"] == lang}
            for lang in ("es", "fr")}
    english = [row for row in asterisk if row["lang"] == "en"][:6]
    root = tmp_path / "multimed"
    lines = []
    for row in english:
        _copy(row, root / "en" / "audio")
        line = {"audio": f"audio/{row['path'].name}", "text": row["text"], "duration": 99.0,
                "French": text["fr"][row["prompt_id"]], "prompt_id": row["prompt_id"]}
        if row is not english[-1]:
            line["translation_es"] = text["es"][row["prompt_id"]]
        lines.append(json.dumps(line, ensure_ascii=False))
    lines += ["not json", json.dumps({"audio": "audio/missing.wav", "text": "gone"})]
    (root / "en" / "train.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (root / "en" / "dev.tsv").write_text(
        "audio\ttext\ttext_es\n"
        f"audio/{english[0]['path'].name}\t{english[0]['text']}\t"
        f"{text['es'][english[0]['prompt_id']]}\n", encoding="utf-8")
    return root, english, text


def test_multimed_layout_keeps_translations_as_translation_keys(tmp_path: Path) -> None:
    root, english, text = _multimed_root(tmp_path)
    entries, problems = from_multimed(str(root), "en", audio_dir=tmp_path / "audio",
                                      translations=["es", "fr"])
    assert [(e.audio_filepath, e.text, e.duration, e.lang) for e in entries] == [
        ((root / "en" / "audio" / row["path"].name).resolve(), row["text"], row["duration"],
         "en") for row in english]
    assert entries[0].extra == {"prompt_id": english[0]["prompt_id"],
                                "translation_fr": text["fr"][english[0]["prompt_id"]],
                                "translation_es": text["es"][english[0]["prompt_id"]]}
    assert "translation_es" not in entries[-1].extra
    assert {(p.line, p.kind, p.warning) for p in problems} == {
        (7, "malformed row", False), (8, "audio file missing", False),
        (6, "missing translation", True)}
    only_fr, _ = from_multimed(str(root), "en", audio_dir=tmp_path / "audio",
                               translations=["fr"])
    assert all(set(e.extra) == {"prompt_id", "translation_fr"} for e in only_fr)
    (dev,), none = from_multimed(str(root), "en", "dev", audio_dir=tmp_path / "audio")
    assert dev.extra == {"translation_es": text["es"][english[0]["prompt_id"]]} and none == []


def test_multimed_st_hub_form_maps_language_columns(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    _, english, text = _multimed_root(tmp_path)
    rows = english[:2]
    datasets.Dataset.from_dict({
        "audio": [str(row["path"]) for row in rows], "text": [row["text"] for row in rows],
        "duration": [row["duration"] for row in rows], "English": [row["text"] for row in rows],
        "French": [text["fr"][row["prompt_id"]] for row in rows],
        "Spanish": [text["es"][row["prompt_id"]] for row in rows],
    }).cast_column("audio", datasets.Audio()).save_to_disk(str(tmp_path / "st"))
    entries, problems = from_multimed(str(tmp_path / "st"), "en", audio_dir=tmp_path / "wav",
                                      translations=["fr"])
    assert problems == []
    assert [(e.text, e.extra) for e in entries] == [
        (row["text"], {"translation_fr": text["fr"][row["prompt_id"]]}) for row in rows]


def test_speaking_rate_outliers_are_flagged_per_language() -> None:
    rows = [row for row in shared_rows("asterisk_prompts") if row["lang"] == "en"][:8]
    entries = [Entry(row["path"], row["duration"], row["text"], "en") for row in rows]
    entries[3] = Entry(rows[3]["path"], rows[3]["duration"], "ok", "en")
    entries[5] = Entry(rows[5]["path"], rows[5]["duration"], " ".join(r["text"] for r in rows),
                       "en")
    zh = [Entry(Path(f"{i}.wav"), 2.0, "砸自己的脚", "zh") for i in range(5)]
    flagged = rate_outliers([*entries, *zh])
    assert [(p.line, p.kind, p.warning) for p in flagged] == [
        (4, "speaking rate outlier", True), (6, "speaking rate outlier", True)]
    assert rate_outliers(entries[:4]) == []  # too few to have a median worth trusting


def test_cli_writes_a_readable_manifest_and_reports(corpus: Path, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    output = tmp_path / "out" / "train.jsonl"
    assert main(["folder", str(corpus), "--lang", "en", "--output", str(output),
                 "--max-duration", "5"]) == 0
    printed = capsys.readouterr().out
    assert "kept 4 utterances" in printed
    assert "no transcript: 1 (dropped)" in printed
    assert "duration out of range: 1 (dropped)" in printed  # agent-alreadyon.wav, 5.5 s
    entries, bad = read_manifest(output)
    assert bad == [] and len(entries) == 4
    raw = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
    converted = next(r for r in raw if r["audio_filepath"].endswith("prompt.wav"))
    assert converted["audio_filepath"] == "train_audio/000002-prompt.wav"  # beside the manifest

    assert main(["check", str(output)]) == 0
    assert "kept 4 utterances" in capsys.readouterr().out
    gone = tmp_path / "gone.jsonl"
    gone.write_text(json.dumps({"audio_filepath": "nowhere.wav", "duration": 1.0,
                                "text": "x"}) + "\n", encoding="utf-8")
    assert main(["check", str(gone)]) == 1
    assert "audio file missing: 1 (dropped)" in capsys.readouterr().out
    assert main(["hf", str(tmp_path / "absent"), "--output", str(tmp_path / "x.jsonl")]) == 2


def test_cli_runs_as_a_module(corpus: Path, tmp_path: Path) -> None:
    output = tmp_path / "m.jsonl"
    done = subprocess.run([sys.executable, "-m", "recipes.prepare", "folder", str(corpus),
                           "--lang", "en", "--output", str(output)], cwd=REPO, text=True,
                          capture_output=True, env={**os.environ, "OMP_WAIT_POLICY": "PASSIVE"},
                          check=False)
    assert done.returncode == 0, done.stderr
    assert "kept 5 utterances" in done.stdout
    assert len(read_manifest(output)[0]) == 5


def test_report_groups_problems_with_first_examples() -> None:
    problems = [Problem(i, f"{i}.wav", "audio file missing", "audio file missing")
                for i in range(5)] + [Problem(9, "", "bad", "malformed row")]
    text = report([Entry(SPEECH / "a.wav", 1800.0, "x")], problems, examples=2)
    assert text.splitlines() == [
        "kept 1 utterances, 0.50 h (30.0 min); 6 problems",
        "  audio file missing: 5 (dropped)", "    0.wav: audio file missing",
        "    1.wav: audio file missing", "  malformed row: 1 (dropped)", "    line 9: bad"]
