"""Translation metrics agree with sacrebleu's own command line on real medical text."""

from __future__ import annotations

import csv
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from eval.comet import Comet, comet_checkpoint
from eval.metric import MetricUnavailableError
from eval.translation import compare_systems, score_translations
from tests.conftest import SHARED_DATA


def _medline(direction: str) -> list[dict[str, str]]:
    path = SHARED_DATA / "mt" / "medline" / f"wmt18.medline.{direction}.tsv"
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    with path.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))
    return [r for r in rows if r["ref"].strip()]


def _degrade(text: str, every: int) -> str:
    """A weaker 'system': the reference with every ``every``-th word dropped."""
    return " ".join(w for i, w in enumerate(text.split()) if (i + 1) % every)


def test_scores_match_the_sacrebleu_command_line(tmp_path: Path) -> None:
    rows = _medline("en-de")
    references = [r["ref"] for r in rows]
    hypotheses = [_degrade(r, 4) for r in references]
    (tmp_path / "ref.txt").write_text("\n".join(references) + "\n", encoding="utf-8")
    (tmp_path / "hyp.txt").write_text("\n".join(hypotheses) + "\n", encoding="utf-8")
    command = [sys.executable, "-m", "sacrebleu", str(tmp_path / "ref.txt"),
               "-i", str(tmp_path / "hyp.txt"), "-m", "bleu", "chrf", "ter"]
    cli = json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout)
    ours = score_translations(hypotheses, references, "de", metrics=("bleu", "chrf", "ter"),
                              n_bootstrap=1)
    for theirs, mine in zip(cli, ours, strict=True):
        assert mine.metric == theirs["name"]
        assert mine.score == pytest.approx(theirs["score"], abs=0.05)  # the CLI rounds to 0.1
        assert mine.signature == theirs["signature"]


def test_chinese_is_tokenised_as_chinese_and_intervals_are_reported() -> None:
    rows = _medline("en-zh")
    references = [r["ref"] for r in rows][:80]
    hypotheses = [r[: max(1, len(r) * 3 // 4)] for r in references]
    bleu, = score_translations(hypotheses, references, "zh", metrics=("bleu",), n_bootstrap=200)
    assert "tok:zh" in bleu.signature and "bs:200" in bleu.signature
    assert bleu.ci is not None and 0 < bleu.ci < 20
    assert 0 < bleu.score < 100


def test_paired_bootstrap_separates_a_better_system() -> None:
    references = [r["ref"] for r in _medline("en-de")][:100]
    worse = [_degrade(r, 2) for r in references]
    better = [_degrade(r, 6) for r in references]
    bleu, chrf = compare_systems(worse, better, references, "de", n_samples=200)
    assert bleu.system > bleu.baseline and bleu.significant
    assert chrf.system > chrf.baseline and chrf.significant


def test_unknown_metric_and_length_mismatch() -> None:
    with pytest.raises(ValueError, match="unknown translation metric"):
        score_translations(["a"], ["a"], "en", metrics=("meteor",))
    with pytest.raises(ValueError, match="1 hypotheses but 2 references"):
        score_translations(["a"], ["a", "b"], "en")


def test_comet_without_its_package_or_model_says_what_is_missing(tmp_path: Path) -> None:
    if importlib.util.find_spec("comet") is None:
        with pytest.raises(MetricUnavailableError, match=r"pip install 'medstream\[comet\]'"):
            Comet()
    with pytest.raises(MetricUnavailableError, match="no COMET checkpoint"):
        comet_checkpoint(str(tmp_path / "nowhere"))
    with pytest.raises(MetricUnavailableError, match="not in the local Hugging Face cache"):
        comet_checkpoint("Unbabel/not-a-cached-comet-model")
