"""The Whisper speech-translation recipe: MultiMed-ST-style manifests built from parallel
recordings, a tiny end-to-end model trained and exported, compared with Whisper base in one
BLEU/chrF report, and used by `medstream transcribe --task translate`."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import soundfile

from recipes.st_whisper.train import cascade, pair_prompts, prompt
from tests.conftest import SPEECH, read_manifest, speak
from tests.whisper_recipes import run_recipe, transcribe_cli


def test_parallel_recordings_become_multimed_st_entries() -> None:
    rows = read_manifest("asterisk_prompts")
    english = {r["prompt_id"]: r["text"] for r in rows if r["lang"] == "en"}
    entries, problems = pair_prompts(SPEECH / "asterisk_prompts" / "manifest.jsonl",
                                     ("es", "fr"), "en")
    assert problems == []
    assert sorted({e.lang for e in entries}) == ["es", "fr"] and len(entries) == 56
    for entry in entries:
        assert entry.extra["translation_en"] == english[entry.extra["prompt_id"]]
    assert prompt("es", "en") == ("es", "translate")
    assert prompt("es", "de") == ("de", "transcribe")  # translate only produces English


def test_cascade_translates_each_transcript_from_its_own_language() -> None:
    calls: list[tuple[str, str]] = []

    def fake_mt(texts: Sequence[str], source: str, target: str) -> list[str]:
        calls.append((source, target))
        return [f"{source}>{target}:{t}" for t in texts]

    out = cascade(["fr", "es", "fr"], ["un", "uno", "deux"], fake_mt, "en")
    assert out == ["fr>en:un", "es>en:uno", "fr>en:deux"]
    assert calls == [("es", "en"), ("fr", "en")]


@pytest.mark.slow
def test_tiny_recipe_trains_exports_compares_and_translates(tmp_path: Path) -> None:
    read_manifest("asterisk_prompts")  # skips without the shared speech
    output = tmp_path / "st-whisper"
    report = run_recipe("st_whisper", output)
    assert report["loss_last"] < 0.8 * report["loss_first"], (report["loss_first"],
                                                               report["loss_last"])
    assert report["eval_loss_after"] < report["eval_loss_before"]
    val = [json.loads(line) for line in
           (output / "manifests" / "val.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(val) == 6 and all(v["translation_en"] and v["lang"] in ("es", "fr") for v in val)
    systems = {r["system"]: r for r in report["systems"]}
    ours, reference = systems["end-to-end (this model)"], systems[
        "reference: base speech translation"]
    assert ours["segments"] == reference["segments"] == 6
    assert "tok:13a" in ours["signatures"]["bleu"]
    # Whisper base really translates; the tiny model trained for 40 steps does not.
    assert reference["chrf"] > ours["chrf"]
    assert set(report["cascade_asr_wer"]) == {"es", "fr"}
    table = (output / "report.md").read_text(encoding="utf-8")
    assert "| system | BLEU | chrF | segments |" in table and "| end-to-end" in table

    spanish = Path(next(v["audio_filepath"] for v in val if v["lang"] == "es"))
    transcript = transcribe_cli(spanish, output / "model", tmp_path / "translations",
                                "--language", "es", "--task", "translate")
    assert transcript["task"] == "translate" and transcript["complete"]


@pytest.mark.slow
def test_report_compares_end_to_end_with_the_cascade(tmp_path: Path, tiny_marian: Any) -> None:
    """German medical sentences spoken by espeak-ng (MultiMed-ST-style manifests with
    ``translation_en``): the report scores the end-to-end model, the cascade (Whisper base
    ASR → the de→en Marian trained in this session) and Whisper base's own translation on the
    same segments."""
    from recipes.mt.tiny_marian import train_dev_split

    pairs = sorted((p for p in train_dev_split().dev if 4 <= len(p.source.split()) <= 12),
                   key=lambda p: len(p.source))[:10]
    assert len(pairs) == 10
    rows = []
    for i, pair in enumerate(pairs):
        audio = speak(pair.source, tmp_path / f"de-{i}.wav", voice="de")
        rows.append(json.dumps({"audio_filepath": str(audio),
                                "duration": soundfile.info(str(audio)).duration,
                                "text": pair.source, "lang": "de",
                                "translation_en": pair.target}))
    (tmp_path / "train.jsonl").write_text("\n".join(rows[:6]) + "\n", encoding="utf-8")
    (tmp_path / "val.jsonl").write_text("\n".join(rows[6:]) + "\n", encoding="utf-8")
    output = tmp_path / "st-de"
    report = run_recipe("st_whisper", output, "source_languages=[de]", "parallel_from=null",
                        f"train_manifests=[{tmp_path / 'train.jsonl'}]",
                        f"val_manifests=[{tmp_path / 'val.jsonl'}]", "max_steps=6",
                        f"cascade_mt={tiny_marian.ct2_dir}")
    systems = {r["system"].split(":")[0]: r for r in report["systems"]}
    assert set(systems) == {"end-to-end (this model)", "cascade", "reference"}
    assert all(r["segments"] == 4 for r in systems.values())
    cascade_row = systems["cascade"]
    assert str(tiny_marian.ct2_dir) in cascade_row["system"]
    assert [e["reference"] for e in cascade_row["examples"]] == [p.target for p in pairs[6:9]]
    assert all(e["hypothesis"] for e in cascade_row["examples"])  # the MT really translated
    assert 0 <= report["cascade_asr_wer"]["de"]["wer"] < 100  # base hears espeak's German
    table = (output / "report.md").read_text(encoding="utf-8")
    assert "| cascade: base → " in table
