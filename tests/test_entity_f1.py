"""Entity F1 agrees with seqeval on a real biomedical NER corpus."""

from __future__ import annotations

import random

import pytest
from nervaluate import Evaluator
from seqeval.metrics import classification_report, f1_score

from eval.entities import MATCH_MODES, EntityF1, entity_f1
from ner.iob import Span, spans_from_iob2
from tests.conftest import SHARED_DATA


def _conll(path_name: str) -> list[list[str]]:
    path = SHARED_DATA / "ner" / path_name
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    sentences: list[list[str]] = [[]]
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            sentences[-1].append(line.split("\t")[-1])
        elif sentences[-1]:
            sentences.append([])
    return [s for s in sentences if s]


def _perturb(tags: list[str], rng: random.Random) -> list[str]:
    """A plausible tagger's mistakes: dropped tags, shifted starts, stray I- tags."""
    out = list(tags)
    for i, tag in enumerate(out):
        roll = rng.random()
        if tag != "O" and roll < 0.15:
            out[i] = "O"
        elif tag.startswith("B-") and roll < 0.25 and i + 1 < len(out):
            out[i], out[i + 1] = "O", tag
        elif tag == "O" and roll < 0.01:
            out[i] = "I-Disease"
    return out


def test_strict_f1_matches_seqeval_on_ncbi_disease_devel() -> None:
    gold_tags = _conll("ncbi_disease/devel.tsv")
    rng = random.Random(7)
    pred_tags = [_perturb(s, rng) for s in gold_tags]
    ours = entity_f1([spans_from_iob2(s) for s in gold_tags],
                     [spans_from_iob2(s) for s in pred_tags])
    assert ours.micro.f1 == pytest.approx(f1_score(gold_tags, pred_tags))
    report = classification_report(gold_tags, pred_tags, output_dict=True)
    assert ours.per_type["Disease"].f1 == pytest.approx(report["Disease"]["f1-score"])
    assert ours.per_type["Disease"].support == report["Disease"]["support"]
    assert 0.5 < ours.micro.f1 < 0.95


def test_iob2_chunking_by_hand() -> None:
    tags = ["B-Chemical", "I-Chemical", "O", "I-Disease", "I-Disease", "B-Disease", "I-Chemical"]
    # A stray I-Disease starts a span (conlleval); B- always starts one; a type change ends one.
    assert spans_from_iob2(tags) == [Span(0, 2, "Chemical"), Span(3, 5, "Disease"),
                                     Span(5, 6, "Disease"), Span(6, 7, "Chemical")]


def test_a_boundary_error_is_a_miss_and_a_false_alarm() -> None:
    # gold: one Disease span (tokens 1-3); predicted: tokens 1-2. Strict matching: P = 0/1,
    # R = 0/1, F1 = 0.
    scores = entity_f1([[Span(1, 3, "Disease")]], [[Span(1, 2, "Disease")]])
    assert (scores.micro.precision, scores.micro.recall, scores.micro.f1) == (0.0, 0.0, 0.0)


def test_the_four_matching_modes_by_hand() -> None:
    gold = [[Span(1, 3, "Disease"), Span(5, 6, "Chemical")]]
    pred = [[Span(1, 2, "Disease"), Span(5, 6, "Disease")]]
    # pred 1 overlaps gold 1 with the right type but short; pred 2 has gold 2's exact
    # boundaries with the wrong type.
    # strict: nothing correct → P = R = 0.
    # exact: pred 2 correct (boundaries) → P = R = 1/2.
    # partial: pred 2 correct, pred 1 partial (½) → P = R = (1 + 0.5) / 2 = 0.75.
    # type: pred 1 correct (overlap, same type), pred 2 incorrect → P = R = 1/2.
    expected = {"strict": 0.0, "exact": 0.5, "partial": 0.75, "type": 0.5}
    for mode, value in expected.items():
        scores = entity_f1(gold, pred, mode=mode)  # type: ignore[arg-type]
        assert (scores.micro.precision, scores.micro.recall) == (value, value), mode
    assert EntityF1("partial").corpus_score(pred, gold).score == pytest.approx(75.0)


def test_strict_agrees_with_nervaluate_and_modes_are_ordered_on_bc5cdr() -> None:
    gold_tags = _conll("bc5cdr/devel.tsv")[:800]
    rng = random.Random(3)
    pred_tags = [_perturb(s, rng) for s in gold_tags]
    gold = [spans_from_iob2(s) for s in gold_tags]
    pred = [spans_from_iob2(s) for s in pred_tags]
    ours = entity_f1(gold, pred)
    theirs = Evaluator(gold_tags, pred_tags, tags=["Chemical", "Disease"],
                       loader="list").evaluate()["overall"]["strict"]
    assert ours.micro.f1 == pytest.approx(theirs.f1)
    f1 = {mode: entity_f1(gold, pred, mode=mode).micro.f1 for mode in MATCH_MODES}
    # Relaxing the match can only help: strict ≤ exact ≤ partial, strict ≤ type.
    assert f1["strict"] <= f1["exact"] <= f1["partial"]
    assert f1["strict"] <= f1["type"]
    assert f1["strict"] < f1["partial"]  # the shifted starts are partial matches
