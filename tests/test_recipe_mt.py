"""The MT terminology recipe (recipes/mt): training pairs annotated from their term pairs, a
team's own parallel files read for their language pair (TSV by language or src/ref columns,
JSONL) and held out into a dev set, the tiny configs trained end to end (de→en on the shared
data, fr→en from train_files: loss down, CTranslate2 export loaded and used by medstream's
Translator and CLI with annotations, report written), and the markers added to pretrained
Marian, NLLB-200 and M2M100 models so that their conversions keep the vocabulary aligned."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from recipes.mt.parallel import read_parallel_file, split_pairs
from recipes.mt.terms import annotate_pairs, find_terms, oriented_glossary
from recipes.mt.tiny_marian import (
    DATA_DIR,
    MEDLINE_FILES,
    ParallelPair,
    TinyMarianConfig,
    new_model,
    train_sentencepiece,
    write_tokenizer,
)
from recipes.mt.vocabulary import load_with_markers
from speech.errors import DataFileError
from tests.conftest import REPO, SHARED_DATA, TICO_TERMS, WMT23
from tests.mt_families import FALLBACK_LINES, build_tiny_m2m100, build_tiny_nllb, convert_to_ct2
from translate.glossary import Glossary
from translate.types import GlossaryEntry

pytestmark = pytest.mark.filterwarnings("ignore:Recommended. pip install sacremoses")

MARKERS = ("<t>", "</t>")
FR_EN_FILES = [SHARED_DATA / "mt" / "medline" / f"medline1{year}_{direction}.tsv"
               for year in (8, 9) for direction in ("fr2en", "en2fr")]
TICO_FR = SHARED_DATA / "mt" / "tico19" / "tico19_dev.en-fr.tsv"


def _need(needed: list[Path]) -> None:
    missing = [str(path) for path in needed if not path.is_file()]
    if missing:
        pytest.skip(f"{', '.join(missing)} absent: the shared MT data is not on this machine")


def _need_mt_data() -> None:
    _need([WMT23, *(DATA_DIR / name for name in MEDLINE_FILES)])


def _run_recipe(output: Path, *overrides: str,
                config: str = "recipes/mt/conf/tiny.yaml") -> dict[str, Any]:
    command = [sys.executable, "recipes/mt/train.py", "--config", config,
               "--output", str(output)]
    for item in overrides:
        command += ["--set", item]
    subprocess.run(command, cwd=REPO, check=True,
                   env={**os.environ, "OMP_WAIT_POLICY": "PASSIVE", "HF_HUB_OFFLINE": "1",
                        "MEDSTREAM_OFFLINE": "1"})
    report: dict[str, Any] = json.loads((output / "report.json").read_text(encoding="utf-8"))
    return report


def _system_rows(report: dict[str, Any], terms_checked: int) -> dict[str, dict[str, Any]]:
    """The report's evaluation rows by system, once every system is there with its scores
    between 0 and 100 and more than ``terms_checked`` terms checked."""
    rows = {row["system"]: row for row in report["evaluation"]["systems"]}
    assert set(rows) == {"plain", "annotated", "hard", "annotated+hard"}
    for row in rows.values():
        for key in ("bleu", "chrf", "term_success", "term_success_lenient"):
            assert 0.0 <= row[key] <= 100.0
        assert row["terms_checked"] > terms_checked
    return rows


# ---------------------------------------------------------------------------------- data


def test_training_terms_need_the_reference_to_use_them() -> None:
    glossary = Glossary([GlossaryEntry("Fieber", "fever"), GlossaryEntry("Husten", "cough")],
                        "de", "en")
    pair = ParallelPair("Der Patient hat Fieber und Husten.", "The patient has a fever.", "x")
    segment = [("Patient", "patient"), ("hat", "suffers from")]
    found = find_terms(pair, segment, glossary, "de", "en")
    assert [(t.source, t.target, t.origin) for t in found] == [
        ("Patient", "patient", "segment"), ("Fieber", "fever", "glossary")]

    [always] = annotate_pairs([pair], {"x": segment}, glossary, 1.0, MARKERS, "de", "en", 0)
    assert always.source == "Der Patient <t> patient </t> hat Fieber <t> fever </t> und Husten."
    [never] = annotate_pairs([pair], {"x": segment}, glossary, 0.0, MARKERS, "de", "en", 0)
    assert never.source == pair.source and len(never.terms) == 2 and not never.annotated


def test_the_tico19_glossary_is_turned_round_for_german_to_english() -> None:
    if not TICO_TERMS.is_file():
        pytest.skip(f"{TICO_TERMS} is absent")
    glossary = oriented_glossary([TICO_TERMS], "de", "en")
    assert len(glossary) > 300
    assert all((e.src_lang, e.tgt_lang) == ("de", "en") for e in glossary.entries)


# ---------------------------------------------------------------------------------- own files


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_parallel_files_are_read_for_the_language_pair_asked_for(tmp_path: Path) -> None:
    by_language = _write(tmp_path / "a.tsv", ["id\tEN\tvi", "1\tfever\tsốt",
                                              "2\tcough\t", "3\theadache\tđau đầu"])
    assert [(p.source, p.target, p.origin) for p in read_parallel_file(by_language, "vi", "en")
            ] == [("sốt", "fever", "a.tsv:1"), ("đau đầu", "headache", "a.tsv:3")]
    # src/ref with each row's direction (the shared data's layout): reverse rows turned round.
    directed = _write(tmp_path / "b.tsv", [
        "id\tsrc_lang\ttgt_lang\tsrc\tref", "x1\tfr\ten\tla fièvre\tthe fever",
        "x2\ten\tfr\tthe cough\tla toux", "x3\ten\tfr-CA\t  \tvide"])
    assert [(p.source, p.target) for p in read_parallel_file(directed, "fr", "en")] == [
        ("la fièvre", "the fever"), ("la toux", "the cough")]
    plain = _write(tmp_path / "c.tsv", ["src\tref", "Fieber\tfever"])
    assert [(p.source, p.target, p.origin) for p in read_parallel_file(plain, "de", "en")] == [
        ("Fieber", "fever", "c.tsv:2")]
    jsonl = _write(tmp_path / "d.jsonl", [
        json.dumps({"vi": "sốt", "en": "fever"}, ensure_ascii=False), "",
        json.dumps({"id": 7, "src": "ho", "ref": "cough", "src_lang": "vi", "tgt_lang": "en"}),
        json.dumps({"src": "headache", "ref": "đau đầu", "src_lang": "en", "tgt_lang": "vi"},
                   ensure_ascii=False)])
    assert [(p.source, p.target, p.origin) for p in read_parallel_file(jsonl, "vi", "en")] == [
        ("sốt", "fever", "d.jsonl:1"), ("ho", "cough", "d.jsonl:7"),
        ("đau đầu", "headache", "d.jsonl:4")]


def test_a_parallel_file_without_the_two_sides_is_a_clear_error(tmp_path: Path) -> None:
    wrong = _write(tmp_path / "wrong.tsv", ["id\tsourceString\ttargetString", "1\ta\tb"])
    with pytest.raises(DataFileError) as error:
        read_parallel_file(wrong, "fr", "en")
    message = str(error.value)
    assert message.startswith(f"{wrong}:1: cannot find the fr and en sides")
    assert "'fr' and 'en', or 'src' and 'ref'" in message
    assert "has: id, sourceString, targetString" in message
    line = _write(tmp_path / "wrong.jsonl", [json.dumps({"fr": "a", "en": "b"}),
                                             json.dumps({"french": "a", "english": "b"})])
    with pytest.raises(DataFileError, match=r"wrong\.jsonl:2: .*has: french, english"):
        read_parallel_file(line, "fr", "en")
    other = _write(tmp_path / "other.tsv", ["src_lang\ttgt_lang\tsrc\tref", "de\ten\ta\tb"])
    with pytest.raises(DataFileError, match=r"other\.tsv:2: a de→en pair, neither fr→en"):
        read_parallel_file(other, "fr", "en")


def test_the_dev_set_is_held_out_with_distinct_sources() -> None:
    pairs = [ParallelPair(s, s.upper(), str(i)) for i, s in enumerate("abcdcbd")]
    split = split_pairs(pairs, None, 2, "x.tsv")
    assert [(p.source, p.origin) for p in split.dev] == [("b", "5"), ("d", "6")]
    assert [p.source for p in split.train] == ["a", "c", "c"]
    given = split_pairs(pairs, [ParallelPair("a", "A", "dev"), ParallelPair("a", "?", "dev2")],
                        500, "x.tsv")
    assert [p.origin for p in given.dev] == ["dev"] and len(given.train) == 6
    with pytest.raises(ValueError, match=r"x\.tsv: 4 distinct sources, too few"):
        split_pairs(pairs, None, 4, "x.tsv")


def test_the_shared_en_to_fr_files_serve_french_to_english() -> None:
    _need(FR_EN_FILES[1:2])
    pairs = read_parallel_file(FR_EN_FILES[1], "fr", "en")
    assert len(pairs) > 300
    assert sum(" les " in f" {p.source} " for p in pairs) > 100  # French is the source
    assert sum(" the " in f" {p.target} " for p in pairs) > 100


# ---------------------------------------------------------------------------------- end to end


@pytest.mark.slow
def test_tiny_recipe_trains_exports_and_translates_with_annotations(tmp_path: Path) -> None:
    _need_mt_data()
    output = tmp_path / "mt"
    report = _run_recipe(output, "max_steps=200")  # tiny.yaml has 300: CI time
    training = report["training"]
    assert training["steps"] == report["config"]["max_steps"] >= 100
    assert all(math.isfinite(loss) for loss in training["losses"])
    assert training["loss_last"] < training["loss_first"] - 1.5, training
    data = report["data"]
    assert data["pairs_with_terms"] > 1000 and data["terms_annotated"] > 1000
    assert data["terms_found"].get("glossary", 0) > 0
    rows = _system_rows(report, terms_checked=100)
    assert rows["hard"]["term_success"] > 90 and rows["annotated+hard"]["term_success"] > 90
    signatures = report["evaluation"]["signatures"]
    assert signatures["BLEU"].startswith("nrefs:1") and "mode:proper" in signatures[
        "term_success_exact"]
    markdown = (output / "report.md").read_text(encoding="utf-8")
    assert "| annotated | none | yes |" in markdown and "term success" in markdown
    lines = (output / "data" / "train.jsonl").read_text(encoding="utf-8").splitlines()
    assert any("<t>" in json.loads(line)["src_annotated"] for line in lines)

    from translate.annotation import TermAnnotation
    from translate.catalog import load_mt
    from translate.translator import Terminology, Translator
    from translate.types import TranslateOptions

    metadata = json.loads((output / "ct2" / "medstream_mt.json").read_text(encoding="utf-8"))
    assert (metadata["term_annotation"], metadata["markers"]) == ("append", list(MARKERS))
    backend = load_mt(str(output / "ct2"), allow_download=False)
    assert backend.annotation == TermAnnotation(markers=MARKERS)
    assert "<t>" in backend.tokenizer.source("Fieber <t> fever </t>", "de", "en").tokens
    translator = Translator(backend, Terminology([GlossaryEntry("Fieber", "fever")],
                                                 numbers=False))
    text = "Die Patienten hatten Fieber und Husten."
    (hard,) = translator.translate([text], "de", "en", TranslateOptions(terms="hard"))
    assert hard.text and hard.terms[0].satisfied and "<t>" not in hard.text
    (plain,) = translator.translate([text], "de", "en", TranslateOptions(terms="none"))
    assert plain.text and plain.source_text == text
    hf_backend = load_mt(str(output / "hf"), backend="transformers", allow_download=False)
    assert hf_backend.annotation == backend.annotation


# ---------------------------------------------------------------------------------- pretrained


def _pretrained_marian(folder: Path) -> Path:
    """A small random Marian without markers, laid out like an OPUS-MT download."""
    folder.mkdir(parents=True)
    train_sentencepiece(FALLBACK_LINES, folder / "joint.spm", 200)
    tokenizer = write_tokenizer(folder / "joint.spm", folder / "hf")
    config = TinyMarianConfig(d_model=32, encoder_layers=1, decoder_layers=1, heads=2,
                              ffn_dim=64)
    new_model(config, len(tokenizer.get_vocab())).save_pretrained(str(folder / "hf"))
    return folder / "hf"


def _ct2_vocabulary(folder: Path) -> list[str]:
    vocabulary: list[str] = json.loads((folder / "shared_vocabulary.json").read_text("utf-8"))
    return vocabulary


def test_markers_go_before_pad_in_a_pretrained_marian(tmp_path: Path) -> None:
    import torch

    source = _pretrained_marian(tmp_path / "opus")
    from transformers import AutoTokenizer, MarianMTModel

    before: Any = MarianMTModel.from_pretrained(str(source))
    old_vocab = AutoTokenizer.from_pretrained(str(source)).get_vocab()
    model, tokenizer = load_with_markers(source, MARKERS, tmp_path / "hf")
    vocab = tokenizer.get_vocab()
    pad = len(vocab) - 1
    assert (tokenizer.pad_token_id, vocab["<pad>"]) == (pad, pad)
    assert [vocab[m] for m in MARKERS] == [pad - 2, pad - 1]
    assert model.config.pad_token_id == model.config.decoder_start_token_id == pad
    assert tokenizer.tokenize("Fieber <t> fever </t>").count("<t>") == 1
    weights = model.get_input_embeddings().weight
    assert weights.shape[0] == len(vocab)
    assert torch.equal(weights[:pad - 2], before.get_input_embeddings().weight[:pad - 2])
    assert torch.count_nonzero(weights[pad]) == 0
    assert {t: i for t, i in old_vocab.items() if t != "<pad>"}.items() <= vocab.items()
    model.save_pretrained(str(tmp_path / "hf"))
    convert_to_ct2(tmp_path / "hf", tmp_path / "ct2")
    assert _ct2_vocabulary(tmp_path / "ct2") == sorted(vocab, key=vocab.__getitem__)[:-1]


@pytest.mark.parametrize("family", ["nllb", "m2m100"])
def test_markers_are_added_tokens_of_nllb_and_m2m100(tmp_path: Path, family: str) -> None:
    builder = build_tiny_nllb if family == "nllb" else build_tiny_m2m100
    source = builder(tmp_path / "pretrained")
    model, tokenizer = load_with_markers(source, MARKERS, tmp_path / "hf")
    ids = tokenizer.convert_tokens_to_ids(list(MARKERS))
    tokens = tokenizer.convert_ids_to_tokens(tokenizer("Fieber <t> fever </t>").input_ids)
    assert "<t>" in tokens and "</t>" in tokens
    assert max(ids) < model.get_input_embeddings().weight.shape[0]
    model.save_pretrained(str(tmp_path / "hf"))
    convert_to_ct2(tmp_path / "hf", tmp_path / "ct2")
    vocabulary = _ct2_vocabulary(tmp_path / "ct2")
    assert [vocabulary[i] for i in ids] == list(MARKERS)
    assert len(vocabulary) == model.get_input_embeddings().weight.shape[0]


@pytest.mark.slow
def test_recipe_fine_tunes_a_pretrained_nllb(tmp_path: Path) -> None:
    _need_mt_data()
    source = build_tiny_nllb(tmp_path / "nllb")
    output = tmp_path / "run"
    report = _run_recipe(output, f"init_from={source}", "max_steps=4", "train_pairs=64",
                         "eval_segments=4", "batch_size=8", "log_every=2",
                         "learning_rate=1.0e-3", "warmup_steps=1")
    assert report["training"]["steps"] == 4
    assert report["config"]["init_from"] == str(source)
    assert len(report["evaluation"]["systems"]) == 4
    metadata = json.loads((output / "ct2" / "medstream_mt.json").read_text(encoding="utf-8"))
    assert metadata["architecture"] == "m2m_100" and metadata["term_annotation"] == "append"


@pytest.mark.slow
def test_tiny_fr_en_recipe_trains_on_its_own_files_and_medstream_translates(
        tmp_path: Path) -> None:
    _need([*FR_EN_FILES, TICO_FR, TICO_TERMS])
    output = tmp_path / "mt-fr-en"
    report = _run_recipe(output, config="recipes/mt/conf/tiny_fr_en.yaml")
    config, training, data = report["config"], report["training"], report["data"]
    assert (config["source_language"], config["target_language"]) == ("fr", "en")
    assert training["steps"] == config["max_steps"]
    assert all(math.isfinite(loss) for loss in training["losses"])
    assert training["loss_last"] < training["loss_first"] - 1.0, training
    assert data["train_pairs"] > 4000 and data["dev_segments"] == config["dev_segments"]
    assert data["terms_found"].get("glossary", 0) > 1000 and data["terms_annotated"] > 500
    lines = (output / "data" / "train.jsonl").read_text(encoding="utf-8").splitlines()
    pairs = [json.loads(line) for line in lines]
    turned = [row for row in pairs if row["origin"].startswith("medline19_en2fr.tsv:")]
    assert sum(" the " in f" {row['ref']} " for row in turned) > 100  # English is the target
    assert any("<t>" in row["src_annotated"] for row in pairs)
    sources = {row["src"] for row in pairs}
    examples = report["evaluation"]["systems"][0]["examples"]
    assert examples and not any(e["source"] in sources for e in examples)  # held out
    rows = _system_rows(report, terms_checked=10)
    assert rows["hard"]["term_success"] > 90
    markdown = (output / "report.md").read_text(encoding="utf-8")
    assert "(fr→en)" in markdown and "| annotated | none | yes |" in markdown

    metadata = json.loads((output / "ct2" / "medstream_mt.json").read_text(encoding="utf-8"))
    assert (metadata["source_language"], metadata["target_language"]) == ("fr", "en")
    assert metadata["term_annotation"] == "append"
    from streaming.cli.app import app

    glossary = tmp_path / "glossary.tsv"
    glossary.write_text("fr\ten\nfièvre\tfever\n", encoding="utf-8")
    model = str(output / "ct2")
    env = {"COLUMNS": "300"}
    plain = CliRunner().invoke(app, ["translate", "Le patient a de la fièvre.", "--from", "fr",
                                     "--to", "en", "--model", model, "--offline", "--terms",
                                     "none"], env=env)
    assert plain.exit_code == 0, plain.output
    assert plain.stdout.strip() and "<t>" not in plain.stdout
    hard = CliRunner().invoke(app, ["translate", "Le patient a de la fièvre.", "--from", "fr",
                                    "--to", "en", "--model", model, "--offline", "--glossary",
                                    str(glossary)], env=env)
    assert hard.exit_code == 0, hard.output
    assert "fever" in hard.stdout and "<t>" not in hard.stdout
