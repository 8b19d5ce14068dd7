"""`medstream eval`: reports from real data, and their figures agree with the metrics' own."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from eval.entities import entity_f1
from eval.latency import Emission, UtteranceTimeline
from eval.output import write_report
from eval.readers import read_parallel_tsv, read_terminology_jsonl
from eval.report import Report
from eval.sections import latency_section
from eval.terms import TermSuccess, dictionary
from eval.translation import score_translations
from ner.conll import TaggedSentence, read_conll, write_conll
from streaming.cli.app import app
from tests.conftest import SHARED_DATA, SPEECH
from tests.test_entity_f1 import _perturb


def _run(*args: str | Path) -> Result:
    return CliRunner().invoke(app, ["eval", *map(str, args)], env={"COLUMNS": "300"})


def _needs(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path} is absent: the shared data is not on this machine")
    return path


def _report(folder: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((folder / "report.json").read_text())
    return data


def _scores(folder: Path, section: str) -> dict[tuple[str, str], dict[str, Any]]:
    found = next(s for s in _report(folder)["sections"] if s["name"] == section)
    return {(row["subset"], row["score"]["metric"]): row["score"] for row in found["rows"]}


def test_ner_report_on_ncbi_devel_matches_the_metric(tmp_path: Path) -> None:
    gold_path = _needs(SHARED_DATA / "ner" / "ncbi_disease" / "devel.tsv")
    gold = read_conll(gold_path)
    rng = random.Random(11)
    predicted = [TaggedSentence(s.tokens, tuple(_perturb(list(s.tags), rng))) for s in gold]
    pred_path = tmp_path / "pred.tsv"
    write_conll(predicted, pred_path)
    result = _run("ner", "--gold", gold_path, "--pred", pred_path, "--out", tmp_path / "r")
    assert result.exit_code == 0, result.output
    scores = _scores(tmp_path / "r", "ner")
    expected = entity_f1([s.spans for s in gold], [s.spans for s in predicted])
    strict = scores[("ncbi_disease", "entity-F1-strict")]
    assert strict["score"] == pytest.approx(100 * expected.micro.f1)
    assert strict["details"]["per_type"]["Disease"]["support"] == expected.micro.support
    assert scores[("ncbi_disease", "entity-F1-partial")]["score"] > strict["score"]
    assert (tmp_path / "r" / "ner_entity_f1_by_type.png").stat().st_size > 5000
    markdown = (tmp_path / "r" / "report.md").read_text()
    assert "entity-f1\\|match:strict" in markdown  # pipes escaped inside the table
    assert "| ncbi_disease | entity-F1-strict | Disease |" in markdown


def test_mt_report_agrees_with_sacrebleu_and_tests_significance(tmp_path: Path) -> None:
    source = _needs(SHARED_DATA / "mt" / "tico19" / "tico19_dev.en-fr.tsv")
    lines = source.read_text(encoding="utf-8").splitlines()[:201]  # header + 200 segments
    data = tmp_path / "dev.tsv"
    data.write_text("\n".join(lines) + "\n", encoding="utf-8")
    segments = list(read_parallel_tsv(data).segments)
    # "System": the reference with every fifth word dropped; "baseline": the English source.
    system = [" ".join(w for i, w in enumerate(s.ref.split()) if i % 5 != 4) for s in segments]
    baseline = [s.src for s in segments]
    (tmp_path / "sys.txt").write_text("\n".join(system) + "\n", encoding="utf-8")
    (tmp_path / "base.txt").write_text("\n".join(baseline) + "\n", encoding="utf-8")
    result = _run("mt", data, "--hyp", tmp_path / "sys.txt", "--baseline", tmp_path / "base.txt",
                  "--out", tmp_path / "r", "--n-bootstrap", "200")
    assert result.exit_code == 0, result.output
    scores = _scores(tmp_path / "r", "mt")
    bleu, = score_translations(system, [s.ref for s in segments], "fr", ("bleu",), 1)
    assert scores[("system", "BLEU")]["score"] == pytest.approx(bleu.score)
    assert scores[("system", "BLEU")]["ci"] > 0
    assert scores[("system", "BLEU")]["score"] > scores[("baseline", "BLEU")]["score"] + 20
    report = _report(tmp_path / "r")
    section = report["sections"][0]
    assert "COMET" in section["skipped"]
    assert any(note.startswith("BLEU") and "(significant" in note for note in section["notes"])


def test_terms_report_on_wmt23(tmp_path: Path) -> None:
    source = _needs(SHARED_DATA / "mt" / "wmt23_terminology" / "wmt23_terminology.de-en.jsonl")
    data = tmp_path / "terms.jsonl"
    data.write_text("\n".join(source.read_text(encoding="utf-8").splitlines()[:300]) + "\n",
                    encoding="utf-8")
    segments = read_terminology_jsonl(data)
    hypotheses = [s.ref for s in segments]
    (tmp_path / "hyp.txt").write_text("\n".join(hypotheses) + "\n", encoding="utf-8")
    result = _run("terms", data, "--hyp", tmp_path / "hyp.txt", "--mode", "random",
                  "--out", tmp_path / "r")
    assert result.exit_code == 0, result.output
    expected = TermSuccess("random", "en").corpus_score(
        hypotheses, [dictionary(s, "random") for s in segments])
    assert _scores(tmp_path / "r", "terms")[("all", "term-success")]["score"] == \
        pytest.approx(expected.score)


def test_a_hypothesis_file_of_the_wrong_length_is_refused(tmp_path: Path) -> None:
    source = _needs(SHARED_DATA / "mt" / "tico19" / "tico19_dev.en-fr.tsv")
    (tmp_path / "hyp.txt").write_text("one line\n", encoding="utf-8")
    result = _run("mt", source, "--hyp", tmp_path / "hyp.txt", "--out", tmp_path / "r")
    assert result.exit_code == 2
    assert "has 1 lines but the test set has 2930 segments" in result.output
    assert not (tmp_path / "r").exists()


def test_asr_report_from_batch_transcripts_and_a_missing_one(tmp_path: Path) -> None:
    folder = _needs(SPEECH / "pocketsphinx_testdata")
    transcribed = CliRunner().invoke(app, ["transcribe", str(folder), "--model", "tiny.en",
                                           "--language", "en", "--format", "json",
                                           "--out", str(tmp_path / "tx")],
                                     env={"COLUMNS": "300"})
    assert transcribed.exit_code == 0, transcribed.output
    result = _run("asr", folder, "--transcripts", tmp_path / "tx", "--out", tmp_path / "r")
    assert result.exit_code == 0, result.output
    wer = _scores(tmp_path / "r", "asr")[("en", "WER")]
    assert 0 < wer["score"] < 15.0  # the same recordings, tiny.en: 8.8 % in test_recognition
    items = _report(tmp_path / "r")["sections"][0]["items"]
    assert len(items) == 12 and all("hypothesis" in item for item in items)
    assert (tmp_path / "r" / "asr_error_rate_by_utterance.png").is_file()

    next((tmp_path / "tx").rglob("goforward.json")).unlink()
    result = _run("asr", folder, "--transcripts", tmp_path / "tx", "--out", tmp_path / "r2")
    assert result.exit_code == 2
    assert "1 of 12 recordings have no transcript" in result.output
    assert "goforward.wav" in result.output


def test_compare_shows_differences_and_flags_different_signatures(tmp_path: Path) -> None:
    gold_path = _needs(SHARED_DATA / "ner" / "ncbi_disease" / "devel.tsv")
    gold = read_conll(gold_path)[:300]
    for seed in (1, 2):
        rng = random.Random(seed)
        pred = [TaggedSentence(s.tokens, tuple(_perturb(list(s.tags), rng))) for s in gold]
        write_conll(gold, tmp_path / "gold.tsv")
        write_conll(pred, tmp_path / f"pred{seed}.tsv")
        result = _run("ner", "--gold", tmp_path / "gold.tsv", "--pred",
                      tmp_path / f"pred{seed}.tsv", "--out", tmp_path / f"run{seed}")
        assert result.exit_code == 0, result.output
    # Make one signature differ, as if run 2 had been scored another way.
    path = tmp_path / "run2" / "report.json"
    data = json.loads(path.read_text())
    data["sections"][0]["rows"][0]["score"]["signature"] += "|changed"
    path.write_text(json.dumps(data))
    result = CliRunner().invoke(app, ["eval", "compare", str(tmp_path / "run1"),
                                      str(tmp_path / "run2"), "--out", str(tmp_path / "cmp")],
                                env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    rows = json.loads((tmp_path / "cmp" / "comparison.json").read_text())
    assert len(rows) == 4
    assert [r["same_signature"] for r in rows] == [False, True, True, True]
    for row in rows:
        assert row["delta"] == pytest.approx(row["system"] - row["baseline"])
    assert "signatures differ" in (tmp_path / "cmp" / "comparison.md").read_text()


def test_latency_section_and_its_plot(tmp_path: Path) -> None:
    # Two utterances: first words shown 0.6 s and 0.4 s after onset; finals 0.5 s and 0.3 s
    # after offset.
    timelines = [
        UtteranceTimeline(1.0, 3.0, (Emission(1.6, "take"), Emission(2.5, "take two"),
                                     Emission(3.5, "take two tablets", final=True))),
        UtteranceTimeline(5.0, 6.0, (Emission(5.4, "no"), Emission(6.3, "no fever", final=True))),
    ]
    report = Report.new("latency")
    report.sections.append(latency_section(["u1", "u2"], timelines))
    written = write_report(report, tmp_path)
    assert (tmp_path / "latency_latency.png") in written
    loaded = Report.load(tmp_path)
    section = loaded.section("latency")
    assert section is not None
    by_metric = {row.score.metric: row.score for row in section.rows}
    assert by_metric["first-partial-latency"].score == pytest.approx(0.5)
    assert by_metric["final-lag"].score == pytest.approx(0.4)
    assert not by_metric["LAAL"].higher_is_better


def test_pipeline_scores_asr_then_entities_on_its_output(tiny_model_dir: Path,
                                                         tmp_path: Path) -> None:
    folder = _needs(SPEECH / "pocketsphinx_testdata")
    result = _run("pipeline", folder, "--model", "tiny.en", "--ner-model", tiny_model_dir,
                  "--out", tmp_path / "r")
    assert result.exit_code == 0, result.output
    report = _report(tmp_path / "r")
    names = [s["name"] for s in report["sections"]]
    assert names == ["asr", "asr-entities", "stages"]
    entities = report["sections"][1]
    assert {row["score"]["metric"] for row in entities["rows"]} == {
        "entity-F1-bag", "entity-F1-bag-label", "entity-F1-projected"}
    assert len(entities["items"]) == 12
    assert any("Silver reference" in note for note in entities["notes"])
    assert set(report["sections"][2]["skipped"]) == {"mt"}

    missing = _run("pipeline", folder, "--model", "tiny.en", "--ner-model",
                   tmp_path / "no-such-model", "--out", tmp_path / "r2")
    assert missing.exit_code == 0, missing.output
    skipped = _report(tmp_path / "r2")["sections"][-1]["skipped"]
    assert "was not found" in skipped["ner"]
