"""NER on raw text: sentences, whole-word spans, raw corpora and their scoring.

The sentences are from NCBI-disease devel abstracts as written (PubTator originals, public
domain, ``../shared/data/ner/ncbi_disease/devel.raw.jsonl``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from ner.abbreviations import AbbreviationMemory
from ner.errors import NerDataError
from ner.iob import Span
from ner.raw_corpora import (
    RawDocument,
    detokenize,
    document_part,
    raw_split,
    read_raw_jsonl,
    sentence_documents,
)
from ner.schema import EntityType
from ner.sentences import sentence_spans
from ner.tagger import RawWords, WordSpan, whole_word_spans
from streaming.cli.app import app
from tests.conftest import SHARED_DATA

NER_DATA = SHARED_DATA / "ner"
G6PD = ("In most people with red-blood-cell glucose-6-phosphate dehydrogenase (G6PD) "
        "deficiency, the enzyme-deficient phenotype is only moderately expressed in nucleated "
        "cells.")
ARP = ("We have reported the presence of a specific mutation (ATG50-- > AGG) or deletion of "
       "codon 50 of the ARP gene in different tumor types (Shridhar et al., 1996, 1996a). In "
       "the present study, we have observed mutations involving codon 50 in 11 of 37 "
       "pancreatic tumors.")
ATAXIA = ("The ataxia-telangiectasia gene product, a constitutively expressed nuclear protein "
          "that is not up-regulated following genome damage.")
ATM = ("Atm-deficient mice are retarded in growth, do not produce mature sperm, and exhibit "
       "severe defects in T cell maturation while going on to develop thymic lymphomas.")
BRCA = ("Mutations of the BRCA1 gone in humans are associated with predisposition to breast "
        "and ovarian cancers.")


def _words(text: str) -> list[tuple[int, int]]:
    """BERT's words of ``text``: runs of letters and digits, and each other non-space
    character alone."""
    import re

    return [(m.start(), m.end()) for m in re.finditer(r"[A-Za-z0-9]+|[^\sA-Za-z0-9]", text)]


# ------------------------------------------------------------------------------ sentences


def test_sentences_of_a_real_abstract_keep_et_al_and_brackets_inside() -> None:
    spans = sentence_spans("  " + ARP + "\n")
    assert [ARP[a - 2:b - 2] for a, b in spans] == [
        ARP[:ARP.index(" In the")], ARP[ARP.index("In the"):]]
    assert sentence_spans(" \n ") == []
    assert sentence_spans("no punctuation at all in a live transcript") == [(0, 42)]


# ------------------------------------------------------------------------ whole-word spans


def test_no_entity_starts_inside_a_hyphenated_word_or_after_a_bracketed_letter() -> None:
    raw = RawWords.of(G6PD, _words(G6PD))
    glued = {raw.words[k] for k in raw.inside}
    assert {"blood", "cell", "-", "6", "phosphate", ")", ","} <= glued
    # A word after an opening bracket may start an entity: "(G6PD)" is an abbreviation.
    assert "G6PD" not in glued and "glucose" not in glued and "red" not in glued
    # BC5CDR and AnatEM mark "colistin" in "kanamycin-colistin"; after a slash, all do.
    pair = "kanamycin-colistin and ephedrine/propofol"
    raw = RawWords.of(pair, _words(pair))
    assert {raw.words[k] for k in raw.inside} == {"-", "colistin", "/"}
    assert {raw.words[k] for k in raw.starts_forbidden(True)} == {"-", "/"}


def test_a_span_ends_inside_a_hyphenated_word_only_where_the_corpus_does_so() -> None:
    words = _words(G6PD)
    raw = RawWords.of(G6PD, words)
    red = words.index((20, 23))
    deficiency = next(k for k, (a, _) in enumerate(words) if G6PD[a:].startswith("deficiency"))
    glucose = next(k for k, (a, _) in enumerate(words) if G6PD[a:].startswith("glucose"))

    def span(start: int, end: int) -> WordSpan:
        return WordSpan(start, end, EntityType.MEDICAL_CONDITION, 0.9)

    found = [span(red, red + 4), span(red, red + 1), span(glucose, deficiency + 1)]
    kept = whole_word_spans(raw, found, ends_before_hyphen=False)
    # NCBI-disease: "red-blood-" loses its hyphen and then ends inside "red-blood-cell":
    # dropped, as is "red" alone; the whole-word condition stays.
    assert [G6PD[words[s.start][0]:words[s.end - 1][1]] for s in kept] == [
        "glucose-6-phosphate dehydrogenase (G6PD) deficiency"]
    # BC5CDR marks "cocaine" of "cocaine-induced": only the trailing hyphen goes.
    kept = whole_word_spans(raw, found, ends_before_hyphen=True)
    assert [G6PD[words[s.start][0]:words[s.end - 1][1]] for s in kept] == [
        "red-blood", "red", "glucose-6-phosphate dehydrogenase (G6PD) deficiency"]
    atm = RawWords.of(ATM, _words(ATM))
    assert whole_word_spans(atm, [span(0, 3)], ends_before_hyphen=False) == [span(0, 3)]


def test_no_entity_ends_with_a_function_word_or_stray_punctuation() -> None:
    # MTS-Dialog / ACI-Bench validation turns, where the shipped tagger did exactly this.
    def kept(text: str, start: int, end: int) -> list[str]:
        words = _words(text)
        found = [WordSpan(start, end, EntityType.MEDICAL_CONDITION, 0.9)]
        raw = RawWords.of(text, words)
        return [text[words[s.start][0]:words[s.end - 1][1]]
                for s in whole_word_spans(raw, found, ends_before_hyphen=True)]

    assert kept("A rash on my upper arms and torso.", 1, 3) == ["rash"]
    assert kept("so , i'm gon na just take a listen", 6, 7) == []
    assert kept("no focal , motor , or sensory deficit", 1, 6) == ["focal , motor"]
    assert kept("deficiency of vitamin A in type I diabetes", 0, 4) == [
        "deficiency of vitamin A"]
    assert kept("dehydrogenase (G6PD) deficiency", 0, 4) == ["dehydrogenase (G6PD)"]


def test_decoding_cannot_open_an_entity_on_a_glued_word() -> None:
    from ner.tagger import _decode_head, _head

    labels = ("O", "B-MEDICAL_CONDITION", "I-MEDICAL_CONDITION")
    head = _head(labels, [0, 1, 2])
    # "ataxia - telangiectasia": the model is sure "telangiectasia" begins an entity.
    logits = {0: np.array([0.0, 3.0, 0.0]), 1: np.array([0.0, 0.0, 2.0]),
              2: np.array([0.0, 5.0, 3.0])}
    free = _decode_head(head, logits, [0, 1, 2])
    assert [(s.start, s.end) for s in free] == [(0, 2), (2, 3)]
    whole = _decode_head(head, logits, [0, 1, 2], frozenset({1, 2}))
    assert [(s.start, s.end) for s in whole] == [(0, 3)]


# ------------------------------------------------------------------------------ raw corpora


def test_detokenized_conll_keeps_offsets_of_every_token() -> None:
    tokens = ["red", "-", "blood", "-", "cell", "G6PD", "(", "G6PD", ")", "deficiency", ",",
              "1178G", "/", "A", "."]
    text, starts = detokenize(tokens)
    assert text == "red-blood-cell G6PD (G6PD) deficiency, 1178G/A."
    assert [text[s:s + len(t)] for s, t in zip(starts, tokens, strict=True)] == tokens


def _write_jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def test_raw_jsonl_maps_ncbi_classes_and_names_the_bad_line(tmp_path: Path) -> None:
    good: dict[str, Any] = {"id": "1", "text": BRCA, "entities": [
        {"start": 76, "end": 101, "text": "breast and ovarian cancers",
         "type": "CompositeMention"}]}
    path = _write_jsonl(tmp_path / "devel.raw.jsonl", [good])
    with pytest.raises(NerDataError, match="1: entity 'breast and ovarian cancers' is"):
        read_raw_jsonl(path, "ncbi_disease")
    good["entities"] = [{"start": 76, "end": 102, "type": "CompositeMention"}]
    _write_jsonl(path, [good, {"id": "2", "text": "x", "entities": [
        {"start": 0, "end": 5, "type": "Disease"}]}])
    with pytest.raises(NerDataError, match=r"raw.jsonl:2: entity offsets 0:5 do not fit"):
        read_raw_jsonl(path, "ncbi_disease")
    _write_jsonl(path, [good, {"text": "x", "entities": [{"start": 0, "end": 1, "type": "Gene"}]}])
    with pytest.raises(NerDataError, match="'Gene' is not one of"):
        read_raw_jsonl(path, "ncbi_disease")
    _write_jsonl(path, [good])
    [document] = read_raw_jsonl(path, "ncbi_disease")
    assert document.spans == (Span(76, 102, "MEDICAL_CONDITION"),)
    assert BRCA[76:102] == "breast and ovarian cancers"


def test_halves_and_the_documents_of_conll_sentences() -> None:
    documents = [RawDocument(str(i), f"Doc {i} starts here. It goes on.", ()) for i in range(5)]
    assert [d.id for d in document_part(documents, "choose")] == ["0", "1", "2"]
    assert [d.id for d in document_part(documents, "report")] == ["3", "4"]
    assert len(document_part(documents, "all")) == 5
    with pytest.raises(ValueError, match="unknown part"):
        document_part(documents, "test")  # type: ignore[arg-type]
    sentences = [["Doc", "3", "starts", "here", "."], ["It", "goes", "on", "."],
                 ["Doc", "0", "starts", "here", "."], ["It", "goes", "on", "."]]
    assert sentence_documents(sentences, documents) == [3, 3, 0, 0]
    with pytest.raises(NerDataError, match="sentence 1"):
        sentence_documents([["Nowhere", "."]], documents)


def test_ncbi_devel_halves_cut_conll_and_raw_at_the_same_abstracts() -> None:
    if not (NER_DATA / "ncbi_disease" / "devel.raw.jsonl").is_file():
        pytest.skip(f"the NER corpora are not under {NER_DATA}")
    from ner.evaluation import conll_part

    documents, original = raw_split(NER_DATA, "ncbi_disease", "devel")
    assert original and len(documents) == 100
    choose = conll_part(NER_DATA, "ncbi_disease", "devel", "choose")
    report = conll_part(NER_DATA, "ncbi_disease", "devel", "report")
    assert len(choose) + len(report) == 923
    gold_mentions = sum(len(d.spans) for d in document_part(documents, "report"))
    assert sum(len(s.sentence.spans) for s in report) == pytest.approx(gold_mentions, abs=3)


def test_eval_ner_scores_raw_jsonl_on_character_spans(tmp_path: Path) -> None:
    gold = _write_jsonl(tmp_path / "gold.jsonl", [
        {"id": "a", "text": ATAXIA, "entities": [{"start": 4, "end": 25,
                                                   "type": "SpecificDisease"}]},
        {"id": "b", "text": BRCA, "entities": [{"start": 76, "end": 102,
                                                 "type": "MEDICAL_CONDITION"}]}])
    pred = _write_jsonl(tmp_path / "pred.jsonl", [
        {"id": "a", "text": ATAXIA, "entities": [{"start": 4, "end": 10,
                                                   "type": "MEDICAL_CONDITION"}]},
        {"id": "b", "text": BRCA, "entities": [{"start": 76, "end": 102,
                                                 "type": "MEDICAL_CONDITION"}]}])
    out = tmp_path / "report"
    result = CliRunner().invoke(app, ["eval", "ner", "--gold", str(gold), "--pred", str(pred),
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    scores = {row["metric"]: row["score"] for row in _rows(report)}
    assert scores["entity-F1-strict"] == pytest.approx(50.0)  # "ataxia" is not the disease
    assert scores["entity-F1-partial"] == pytest.approx(75.0)
    wrong = _write_jsonl(tmp_path / "wrong.jsonl", [{"text": ATAXIA, "entities": []}])
    result = CliRunner().invoke(app, ["eval", "ner", "--gold", str(gold), "--pred", str(wrong),
                                      "--out", str(out)])
    assert result.exit_code != 0 and "does not hold the texts" in " ".join(result.output.split())


def _rows(report: dict[str, object]) -> list[dict[str, Any]]:
    """Every score row of a report.json, wherever its sections keep them."""
    found: list[dict[str, Any]] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if "metric" in node and "score" in node:
                found.append(node)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(report)
    return found


# --------------------------------------------------------------- the shipped model (full tier)


@pytest.mark.slow
def test_the_shipped_model_gives_whole_word_spans_on_real_devel_sentences() -> None:
    from ner.catalog import DEFAULT_NER_MODEL, resolve_ner_model
    from ner.tagger import TransformerTagger

    tagger = TransformerTagger(resolve_ner_model(DEFAULT_NER_MODEL).path)
    found = {text: [e.text for e in tagger.tag(text, "ncbi_disease")]
             for text in (G6PD, ATAXIA, ATM, BRCA)}
    assert found[G6PD] == ["glucose-6-phosphate dehydrogenase (G6PD) deficiency"]
    assert found[ATAXIA] == ["ataxia-telangiectasia"]
    assert "breast and ovarian cancers" in found[BRCA]  # NCBI: one composite mention
    for text in found:
        # NCBI-disease's head: whole words only.
        for entity in tagger.tag(text, "ncbi_disease"):
            before = text[entity.start - 1] if entity.start else " "
            after = text[entity.end:entity.end + 2]
            assert before.isspace() or before in "([", (text, entity)
            assert not (after[:1] == "-" and after[1:].isalnum()), (text, entity)
        # The view (BC5CDR's head) may end before a hyphen ("cocaine-induced"), never on one.
        assert all(not e.text.endswith(("-", "/", ",")) for e in tagger.tag(text))


@pytest.mark.slow
def test_a_long_text_gives_the_spans_of_its_sentences_one_by_one() -> None:
    if not (NER_DATA / "ncbi_disease" / "devel.raw.jsonl").is_file():
        pytest.skip(f"the NER corpora are not under {NER_DATA}")
    from ner.catalog import DEFAULT_NER_MODEL, resolve_ner_model
    from ner.evaluation import pipeline_recognizer
    from ner.tagger import TransformerTagger

    documents, _ = raw_split(NER_DATA, "ncbi_disease", "devel")
    text = ""
    for document in documents:
        text += document.text + "\n"
        if len(text) >= 10_000:
            break
    recognizer = pipeline_recognizer(TransformerTagger(resolve_ner_model(DEFAULT_NER_MODEL).path))
    whole = [(e.start, e.end, e.type) for e in recognizer.recognize_one(text, "en")]
    pieces = sentence_spans(text)
    one_by_one: list[tuple[int, int, EntityType]] = []
    memory = AbbreviationMemory(None)  # definitions carry over, as within one text
    for (start, _), found in zip(pieces, recognizer.recognize(
            [text[a:b] for a, b in pieces], "en", memory), strict=True):
        one_by_one.extend((e.start + start, e.end + start, e.type) for e in found)
    assert len(pieces) > 60 and len(whole) > 50
    assert whole == one_by_one
