"""The NeMo streaming ASR recipe: manifests checked, tiny model trained on real speech, exported
.nemo loaded and streamed by medstream's backend, streaming report per look-ahead."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from recipes.manifests import Entry, normalise_text, read_manifest, validate, write_manifest
from tests.conftest import REPO, SPEECH

if not os.environ.get("CI"):  # CI installs the nemo extra: a failed import must fail there
    pytest.importorskip("nemo.collections.asr", reason="the nemo extra is not installed")


def test_validation_reports_every_problem_and_keeps_the_good(tmp_path: Path) -> None:
    good = SPEECH / "jfk_inaugural" / "jfk.flac"
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF not really")
    entries = [Entry(good, 11.0, "And so my fellow Americans"),
               Entry(tmp_path / "missing.wav", 1.0, "gone"),
               Entry(broken, 1.0, "broken"),
               Entry(good, 11.0, "   "),
               Entry(good, 3.0, "wrong duration"),
               Entry(good, 11.0, "too long")]
    kept, problems = validate(entries, max_duration=12.0)
    assert [e.text for e in kept] == ["And so my fellow Americans", "wrong duration",
                                      "too long"]
    assert kept[1].duration == pytest.approx(11.0, abs=0.01)
    reasons = [p.reason for p in problems]
    assert "audio file missing" in reasons and "empty text" in reasons
    assert any(r.startswith("unreadable audio") for r in reasons)
    assert any("manifest says 3.00 s" in r for r in reasons)
    assert not validate(entries[-1:], max_duration=5.0)[0]
    manifest = write_manifest(kept, tmp_path / "m" / "train.jsonl")
    again, bad = read_manifest(manifest)
    assert again == kept and bad == []
    assert normalise_text("Wie geht's? Très BIEN, 40 mg!") == "wie geht's très bien 40 mg"


def test_tiny_recipe_trains_exports_and_streams(tmp_path: Path) -> None:
    output = tmp_path / "asr-nemo"
    subprocess.run([sys.executable, "recipes/asr_nemo/train.py", "--config",
                    "recipes/asr_nemo/conf/tiny.yaml", "--output", str(output)], cwd=REPO,
                   check=True, env={**os.environ, "OMP_WAIT_POLICY": "PASSIVE"})
    report = json.loads((output / "report.json").read_text(encoding="utf-8"))
    assert report["data"]["train"]["utterances"] >= 80
    assert report["steps"] >= 50
    assert report["loss_last"] < 0.8 * report["loss_first"], (report["loss_first"],
                                                               report["loss_last"])
    rows = {r["lookahead"]: r for r in report["streaming"]}
    assert set(rows) == {0, 2}
    assert rows[2]["chunk_seconds"] > rows[0]["chunk_seconds"]
    assert all(r["wer"] >= 0 and r["utterances"] == 5 for r in rows.values())
    assert (output / "report.md").read_text(encoding="utf-8").count("|") > 10
    tokenizer = output / "tokenizer"
    assert {"tokenizer.model", "tokenizer.vocab", "vocab.txt"} <= {
        p.name for p in tokenizer.iterdir()}

    from speech.audio import load_audio
    from speech.backends.nemo_streaming import NemoStreaming
    from speech.loader import load_asr
    from speech.online import StreamOptions

    backend = load_asr(str(output / "model.nemo"))
    assert isinstance(backend, NemoStreaming)
    stream = backend.open_stream(StreamOptions())
    stream.accept(load_audio(SPEECH / "jfk_inaugural" / "jfk.flac"))
    stream.finish()
    steps = 0
    while (job := stream.next_job()) is not None:
        stream.complete(job, backend.decode([job])[0])
        steps += 1
    assert stream.done and steps > 10
