"""Per-corpus heads (ner/heads.py), constrained IOB2 decoding (ner/decoding.py) and a tagger
that reads a model through its view or one head."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from ner.decoding import iob2_constraints, viterbi
from ner.encoder import resolve_encoder
from ner.errors import TaggerModelError
from ner.export import MANIFEST, export_ctranslate2
from ner.heads import CONFIG_KEY, SHARED, Heads
from ner.partial_loss import partial_label_loss
from ner.schema import EntityType, iob2_labels
from ner.tagger import TransformerTagger
from speech.errors import InvalidOptionError

CORPORA = ("ncbi_disease", "bc5cdr", "anatem")
ANATOMY = ("O", "B-ANATOMY", "I-ANATOMY")


# --------------------------------------------------------------------------- heads


def test_per_corpus_heads_put_each_corpus_labels_side_by_side() -> None:
    labels, heads = Heads.per_corpus(CORPORA, {"MEDICAL_CONDITION": "bc5cdr"})
    assert labels == ("O", "B-MEDICAL_CONDITION", "I-MEDICAL_CONDITION",
                      "O", "B-MEDICATION", "I-MEDICATION", "B-MEDICAL_CONDITION",
                      "I-MEDICAL_CONDITION", "O", "B-ANATOMY", "I-ANATOMY")
    assert heads.groups == {"ncbi_disease": (0, 1, 2), "bc5cdr": (3, 4, 5, 6, 7),
                            "anatem": (8, 9, 10)}
    assert heads.view == {EntityType.MEDICAL_CONDITION: "bc5cdr",
                          EntityType.MEDICATION: "bc5cdr", EntityType.ANATOMY: "anatem"}
    assert heads.types_viewed_from("ncbi_disease") == frozenset()
    # Without a view a type is read from the first corpus that annotates it.
    assert Heads.per_corpus(CORPORA)[1].view[EntityType.MEDICAL_CONDITION] == "ncbi_disease"
    assert Heads.from_json(json.loads(json.dumps(heads.to_json())), labels) == heads


def test_a_view_or_stored_heads_that_do_not_fit_are_refused() -> None:
    with pytest.raises(ValueError, match="ANATOMY cannot be read from 'bc5cdr'"):
        Heads.per_corpus(CORPORA, {"ANATOMY": "bc5cdr"})
    labels, heads = Heads.per_corpus(CORPORA)
    broken = heads.to_json()
    broken["groups"]["anatem"] = [9, 10]  # does not start with its O
    with pytest.raises(ValueError, match="anatem"):
        Heads.from_json(broken, labels)
    assert Heads.from_json(None, labels[:3]) == Heads(
        {SHARED: (0, 1, 2)}, {EntityType.MEDICAL_CONDITION: SHARED})


def test_the_loss_of_a_head_is_its_own_cross_entropy() -> None:
    labels, heads = Heads.per_corpus(CORPORA)
    torch.manual_seed(0)
    logits = torch.randn(1, 4, len(labels))
    head = list(heads.groups["bc5cdr"])
    gold = torch.tensor([0, 1, 3, 4])  # within the head
    allowed = torch.zeros_like(logits, dtype=torch.bool)
    allowed[0, torch.arange(4), torch.tensor(head)[gold]] = True
    valid = torch.zeros((1, 1, len(labels)), dtype=torch.bool)
    valid[0, 0, head] = True
    expected = torch.nn.functional.cross_entropy(logits[0][:, head], gold)
    assert math.isclose(float(partial_label_loss(logits, allowed, valid)), float(expected),
                        rel_tol=1e-5)
    with pytest.raises(ValueError, match="outside"):
        partial_label_loss(logits, allowed, torch.zeros_like(valid))


# --------------------------------------------------------------------------- decoding


def test_viterbi_repairs_a_sequence_that_is_not_iob2() -> None:
    start, transition = iob2_constraints(ANATOMY)
    probabilities = np.array([[0.9, 0.05, 0.05],   # O
                              [0.05, 0.35, 0.6],   # greedy: I-ANATOMY after O
                              [0.05, 0.05, 0.9]])  # I-ANATOMY
    assert [ANATOMY[i] for i in probabilities.argmax(axis=1)] == ["O", "I-ANATOMY", "I-ANATOMY"]
    path = viterbi(np.log(probabilities), start, transition)
    assert [ANATOMY[i] for i in path] == ["O", "B-ANATOMY", "I-ANATOMY"]
    assert viterbi(np.zeros((0, 3)), start, transition) == []


def test_viterbi_finds_the_best_valid_sequence() -> None:
    labels = iob2_labels([EntityType.MEDICATION, EntityType.ANATOMY])
    start, transition = iob2_constraints(labels)
    rng = np.random.default_rng(7)

    def valid(sequence: tuple[int, ...]) -> bool:
        return all(not labels[j].startswith("I-") or
                   (i is not None and labels[i][2:] == labels[j][2:] and labels[i] != "O")
                   for i, j in zip((None, *sequence[:-1]), sequence, strict=True))

    for _ in range(20):
        log_probs = np.log(rng.dirichlet(np.ones(len(labels)), size=4))
        best = max((s for s in itertools.product(range(len(labels)), repeat=4) if valid(s)),
                   key=lambda s: sum(log_probs[k, j] for k, j in enumerate(s)))
        assert tuple(viterbi(log_probs, start, transition)) == best


# --------------------------------------------------------------------------- tagger with heads


class HeadLookup(torch.nn.Module):
    """Logits from a table: per token, one label per head (every other token: O everywhere)."""

    def __init__(self, labels: tuple[str, ...], heads: Heads,
                 label_of_token: dict[int, dict[str, str]]) -> None:
        super().__init__()
        table = torch.full((30522, len(labels)), -5.0)
        for ids in heads.groups.values():
            table[:, ids[0]] = 5.0
        for token, chosen in label_of_token.items():
            for head, label in chosen.items():
                ids = heads.groups[head]
                table[token, list(ids)] = -5.0
                table[token, ids[heads.labels_of(head, labels).index(label)]] = 5.0
        self.table = table

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> SimpleNamespace:
        return SimpleNamespace(logits=self.table[input_ids])


@pytest.fixture(scope="module")
def heads_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random 1-layer BERT with the three corpus heads, MEDICAL_CONDITION viewed from BC5CDR."""
    from transformers import AutoTokenizer, BertConfig, BertForTokenClassification

    labels, heads = Heads.per_corpus(CORPORA, {"MEDICAL_CONDITION": "bc5cdr"})
    folder = tmp_path_factory.mktemp("heads-tagger")
    config = BertConfig(vocab_size=30522, hidden_size=8, num_hidden_layers=1,
                        num_attention_heads=1, intermediate_size=16,
                        id2label=dict(enumerate(labels)))
    setattr(config, CONFIG_KEY, heads.to_json())
    BertForTokenClassification(config).save_pretrained(folder)
    AutoTokenizer.from_pretrained(resolve_encoder().path).save_pretrained(folder)
    return folder


def _controlled(folder: Path) -> TransformerTagger:
    tagger = TransformerTagger(folder)
    vocabulary = tagger.tokenizer.get_vocab()
    table = {  # NCBI takes the modifier in, BC5CDR does not; AnatEM marks the organ.
        "inherited": {"ncbi_disease": "B-MEDICAL_CONDITION"},
        "breast": {"ncbi_disease": "I-MEDICAL_CONDITION", "bc5cdr": "B-MEDICAL_CONDITION",
                   "anatem": "B-ANATOMY"},
        "cancer": {"ncbi_disease": "I-MEDICAL_CONDITION", "bc5cdr": "I-MEDICAL_CONDITION",
                   "anatem": "I-ANATOMY"},
        "lobe": {"anatem": "I-ANATOMY"},
        "insulin": {"bc5cdr": "B-MEDICATION"},
        "pain": {"bc5cdr": "B-MEDICAL_CONDITION"},
        "liver": {"anatem": "B-ANATOMY"},
    }
    tagger.scorer.model = HeadLookup(tagger.labels, tagger.heads,  # type: ignore[attr-defined]
                                     {vocabulary[w]: row for w, row in table.items()})
    return tagger


def test_the_view_reads_each_type_from_its_head_and_conditions_win_overlaps(
        heads_model_dir: Path) -> None:
    tagger = _controlled(heads_model_dir)
    text = "inherited breast cancer treated with insulin caused liver lobe pain"
    found = [(e.text, e.type.value) for e in tagger.tag(text)]
    # AnatEM's "breast cancer" (pathological anatomy) overlaps BC5CDR's condition: the condition
    # wins; NCBI-disease's "inherited breast cancer" is not in the view.
    assert found == [("breast cancer", "MEDICAL_CONDITION"), ("insulin", "MEDICATION"),
                     ("liver lobe", "ANATOMY"), ("pain", "MEDICAL_CONDITION")]
    assert [(e.text, e.type.value) for e in tagger.tag(text, head="ncbi_disease")] == [
        ("inherited breast cancer", "MEDICAL_CONDITION")]
    assert tagger.tag_words([text.split()], head="anatem") == [
        ["O", "B-ANATOMY", "I-ANATOMY", "O", "O", "O", "O", "B-ANATOMY", "I-ANATOMY", "O"]]
    with pytest.raises(InvalidOptionError, match="no head 'vietmed'"):
        tagger.tag(text, head="vietmed")


def test_heads_survive_the_ctranslate2_export(heads_model_dir: Path, tmp_path: Path) -> None:
    exported = export_ctranslate2(heads_model_dir, tmp_path / "ct2", quantization="float32")
    manifest = json.loads((exported / MANIFEST).read_text(encoding="utf-8"))
    reference, converted = TransformerTagger(heads_model_dir), TransformerTagger(exported)
    assert manifest["heads"] == reference.heads.to_json()
    assert converted.heads == reference.heads
    text = "Cisplatin caused liver failure and breast pain in the patient."
    for head in (None, *CORPORA):
        assert [(e.start, e.end, e.type) for e in converted.tag(text, head)] == \
            [(e.start, e.end, e.type) for e in reference.tag(text, head)]


def test_a_model_whose_heads_do_not_fit_its_labels_is_refused(heads_model_dir: Path,
                                                              tmp_path: Path) -> None:
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(heads_model_dir, broken)
    config = json.loads((broken / "config.json").read_text(encoding="utf-8"))
    config[CONFIG_KEY]["groups"]["anatem"] = [8, 9, 10, 11]
    (broken / "config.json").write_text(json.dumps(config), encoding="utf-8")
    with pytest.raises(TaggerModelError, match="do not fit"):
        TransformerTagger(broken)
