"""Helpers of the Whisper recipe tests: run a recipe offline, transcribe with its export."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from tests.conftest import REPO


def run_recipe(recipe: str, output: Path, *overrides: str) -> dict[str, Any]:
    """Run ``recipes/RECIPE/train.py`` with its tiny config and ``KEY=VALUE`` overrides, never
    touching the network; the report it wrote."""
    sets = [arg for item in overrides for arg in ("--set", item)]
    subprocess.run([sys.executable, f"recipes/{recipe}/train.py", "--config",
                    f"recipes/{recipe}/conf/tiny.yaml", "--output", str(output), *sets], cwd=REPO,
                   check=True, env={**os.environ, "OMP_WAIT_POLICY": "PASSIVE",
                                    "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
                                    "MEDSTREAM_OFFLINE": "1"})
    report: dict[str, Any] = json.loads((output / "report.json").read_text(encoding="utf-8"))
    return report


def transcribe_cli(audio: Path, model: Path, out: Path, *options: str) -> dict[str, Any]:
    """``medstream transcribe AUDIO --model MODEL`` (greedy, no VAD); the JSON it wrote."""
    from streaming.cli.app import app

    result = CliRunner().invoke(app, [
        "transcribe", str(audio), "--model", str(model), "--out", str(out), "--no-vad",
        "--beam-size", "1", "--format", "txt", "--offline", *options], env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    assert (out / f"{audio.stem}.txt").is_file()
    transcript: dict[str, Any] = json.loads((out / f"{audio.stem}.json").read_text(
        encoding="utf-8"))
    return transcript
