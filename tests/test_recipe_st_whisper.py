"""The Whisper speech-translation recipe: MultiMed-ST-style manifests built from parallel
recordings, a tiny end-to-end model trained and exported, compared with Whisper base in one
BLEU/chrF report, and used by `medstream transcribe --task translate`."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from recipes.st_whisper.train import cascade, pair_prompts, prompt
from tests.conftest import SPEECH, read_manifest
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
