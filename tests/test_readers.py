"""The evaluation data readers on every real file in ../shared/data, and on malformed input."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from eval.readers import (
    CharSpan,
    ManifestEntry,
    ParallelSegment,
    TermPair,
    read_manifest,
    read_parallel_tsv,
    read_terminology_jsonl,
    write_manifest,
)
from ner.conll import TaggedSentence, read_conll, write_conll
from ner.iob import Span
from speech.errors import DataFileError, MedstreamError
from tests.conftest import SHARED_DATA, SPEECH, TICO_TERMS, WMT23
from tests.conftest import read_manifest as read_manifest_rows
from translate.glossary import read_glossary
from translate.types import GlossaryEntry


def _require(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path} is absent: the shared data is not on this machine")
    return path


def _files(folder: Path, pattern: str) -> list[Path]:
    files = sorted(_require(folder).glob(pattern))
    if not files:
        pytest.skip(f"no {pattern} under {folder}")
    return files


def _data_lines(path: Path) -> list[str]:
    return [line for line in path.read_text(encoding="utf-8").split("\n") if line.strip()]


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def _error(call: Callable[..., object], *args: object, line: int | None,
           match: str) -> DataFileError:
    with pytest.raises(DataFileError, match=match) as caught:
        call(*args)
    error = caught.value
    assert isinstance(error, MedstreamError)
    assert error.line == line
    assert str(args[0]) in str(error)
    if line is not None:
        assert f":{line}: " in str(error)
    return error


# --------------------------------------------------------------------------- real files


def test_every_speech_manifest_loads_with_existing_audio() -> None:
    total = 0
    for manifest in _files(SPEECH, "*/manifest.jsonl"):
        entries = read_manifest(manifest)
        assert len(entries) == len(_data_lines(manifest)), manifest
        for entry in entries:
            assert entry.audio_filepath.is_file(), entry.audio_filepath
            assert entry.duration > 0
            assert entry.text.strip()
            assert entry.lang
            assert "source" in entry.extra
        rows = read_manifest_rows(manifest.parent.name)
        assert [e.audio_filepath for e in entries] == [r["path"] for r in rows]
        assert [e.text for e in entries] == [r["text"] for r in rows]
        total += len(entries)
    # The shared data grows (fareez_osce_en added 4 long interviews to the first 226 rows); each
    # manifest found is checked in full above, this only guards against finding none of them.
    assert total >= 226


def test_speech_manifest_extra_keys_are_kept() -> None:
    entries = read_manifest(_require(SPEECH / "fireredasr_examples_zh" / "manifest.jsonl"))
    assert all(e.lang == "zh" for e in entries)
    assert all(e.extra["text_nospace"] == e.text.replace(" ", "") for e in entries)
    osce = read_manifest(_require(SPEECH / "fareez_osce_en" / "manifest.jsonl"))
    assert all(e.extra["medical"] is True for e in osce)


@pytest.mark.parametrize("corpus", ["ncbi_disease", "bc5cdr", "anatem"])
def test_ner_devel_sets_load(corpus: str) -> None:
    path = _require(SHARED_DATA / "ner" / corpus / "devel.tsv")
    text = path.read_text(encoding="utf-8")
    blocks = [b for b in text.replace("\r\n", "\n").split("\n\n") if b.strip()]
    sentences = read_conll(path)
    assert len(sentences) == len(blocks)
    assert sum(len(s.tokens) for s in sentences) == len(_data_lines(path))
    types = {span.type for s in sentences for span in s.spans}
    expected = {"ncbi_disease": {"Disease"}, "bc5cdr": {"Chemical", "Disease"},
                "anatem": {"Anatomy"}}[corpus]
    assert types == expected
    first = sentences[0]
    assert first.tokens[0] == blocks[0].split("\n")[0].split("\t")[0]


def test_ner_spans_follow_iob2() -> None:
    sentence = read_conll(_require(SHARED_DATA / "ner" / "bc5cdr" / "devel.tsv"))[0]
    assert sentence.tokens[:3] == ("22", "-", "oxacalcitriol")
    assert sentence.spans[0] == Span(0, 3, "Chemical")


def test_write_conll_reproduces_a_real_file(tmp_path: Path) -> None:
    path = _require(SHARED_DATA / "ner" / "ncbi_disease" / "devel.tsv")
    copy = tmp_path / "devel.tsv"
    write_conll(read_conll(path), copy)
    assert copy.read_bytes() == path.read_bytes()


def test_every_parallel_tsv_loads() -> None:
    files = _files(SHARED_DATA / "mt", "*/*.tsv")
    assert len(files) >= 11  # the shared data grows (tico19 en-pt was added); all are read below
    for path in files:
        corpus = read_parallel_tsv(path)
        rows = len(_data_lines(path)) - 1
        assert len(corpus) + len(corpus.skipped) == rows, path
        assert all(s.src.strip() and s.ref.strip() for s in corpus)
        assert len({s.id for s in corpus}) == len(corpus)
        assert isinstance(corpus[0], ParallelSegment)
        assert list(corpus[:2]) == list(corpus.segments[:2])


def test_empty_medline_sources_are_skipped_and_reported() -> None:
    path = _require(SHARED_DATA / "mt" / "medline" / "wmt18.medline.de-en.tsv")
    corpus = read_parallel_tsv(path)
    assert len(corpus) == 215
    assert [(r.line, r.id, r.reason) for r in corpus.skipped] == [
        (23, "wmt18-de-en-22", "empty src"), (49, "wmt18-de-en-48", "empty src")]
    assert all((s.src_lang, s.tgt_lang) == ("de", "en") for s in corpus)
    kept = read_parallel_tsv(path, keep_empty=True)
    assert len(kept) == 217 and not kept.skipped
    assert kept[21].src == "" and kept[21].id == "wmt18-de-en-22"


def test_tico19_dev_keeps_its_language_codes() -> None:
    corpus = read_parallel_tsv(_require(SHARED_DATA / "mt" / "tico19" / "tico19_dev.en-es.tsv"))
    assert len(corpus) == 2930
    assert {(s.src_lang, s.tgt_lang) for s in corpus} == {("en", "es-419")}


def test_wmt23_terminology_terms_are_oriented_de_to_en() -> None:
    segments = read_terminology_jsonl(_require(WMT23))
    assert len(segments) == 2963
    assert len(_data_lines(WMT23)) == 2963
    assert {(s.src_lang, s.tgt_lang) for s in segments} == {("de", "en")}
    first = segments[0]
    assert first.id == "wmt23term-deen-1"
    assert first.terms_proper[0] == TermPair("Versorgung", "treatment")
    assert TermPair("Handverletzungen", "hand injuries") in first.terms_random
    pairs = [(p, s) for s in segments for p in s.terms_proper]
    assert len(pairs) > 10_000
    oriented = sum(p.source.lower() in s.src.lower() and p.target.lower() in s.ref.lower()
                   for p, s in pairs)
    assert oriented / len(pairs) > 0.99
    assert sum(s.digits_mismatch for s in segments) == 344


def test_tico_glossary_loads_and_filters_by_direction() -> None:
    everything = read_glossary(_require(TICO_TERMS))
    assert len(everything) == 3205 == len(_data_lines(TICO_TERMS)) - 1
    assert everything[0] == GlossaryEntry("1918 flu", "Grippe von 1918", "en", "de", "facebook")
    fr = read_glossary(TICO_TERMS, src_lang="en", tgt_lang="fr")
    assert len(fr) == 642
    assert {(e.src_lang, e.tgt_lang) for e in fr} == {("en", "fr")}
    assert {e.provider for e in fr} == {"facebook", "google"}
    assert read_glossary(TICO_TERMS, src_lang="fr") == []
    assert len(read_glossary(TICO_TERMS, tgt_lang="zh")) == 306 + 337


# --------------------------------------------------------------------------- glossaries


def test_plain_two_column_glossaries(tmp_path: Path) -> None:
    headed = _write(tmp_path / "headed.tsv", ["Source\tTarget", "fever\tfièvre", "",
                                              "rash\téruption cutanée"])
    assert read_glossary(headed) == [GlossaryEntry("fever", "fièvre"),
                                         GlossaryEntry("rash", "éruption cutanée")]
    bare = _write(tmp_path / "bare.tsv", ["fever\tfièvre\tnoun", "rash\téruption cutanée"])
    assert read_glossary(bare, "en", "fr") == [
        GlossaryEntry("fever", "fièvre", "en", "fr"),
        GlossaryEntry("rash", "éruption cutanée", "en", "fr")]
    codes = _write(tmp_path / "codes.tsv", ["en\tfr", "cough\ttoux"])
    assert read_glossary(codes, "en", "fr") == [GlossaryEntry("cough", "toux", "en", "fr")]
    reordered = _write(tmp_path / "reordered.tsv", ["note\ttarget\tsource", "x\ttoux\tcough"])
    assert read_glossary(reordered) == [GlossaryEntry("cough", "toux")]


def test_malformed_glossaries(tmp_path: Path) -> None:
    one = _write(tmp_path / "one.tsv", ["fever\tfièvre", "rash"])
    _error(read_glossary, one, line=2, match="at least two")
    short = _write(tmp_path / "short.tsv", ["source\ttarget\tnote", "fever\tfièvre"])
    _error(read_glossary, short, line=2, match=r"2 field\(s\), but the header has 3")
    empty = _write(tmp_path / "empty.tsv", ["source\ttarget", "fever\t"])
    _error(read_glossary, empty, line=2, match="empty target term")


# --------------------------------------------------------------------------- manifests


def _manifest(tmp_path: Path, *rows: object) -> Path:
    lines = [row if isinstance(row, str) else json.dumps(row, ensure_ascii=False)
             for row in rows]
    return _write(tmp_path / "manifest.jsonl", lines)


def test_manifest_optional_fields(tmp_path: Path) -> None:
    text = "Patient has fever and rash."
    path = _manifest(
        tmp_path,
        {"audio_filepath": "a.wav", "duration": 2, "text": text, "lang": "en",
         "translation": "Le patient a de la fièvre.", "target_lang": "fr",
         "entities": [{"start": 12, "end": 17, "type": "Disease", "text": "fever"},
                      {"start": 22, "end": 26, "type": "Disease"}],
         "speaker": "P"},
        "",
        {"audio_filepath": "/abs/b.wav", "duration": 1.5, "text": "x", "lang": None,
         "translation": {"de": "y", "fr": "z"}, "target_lang": "de"})
    first, second = read_manifest(path)
    assert first == ManifestEntry(
        tmp_path / "a.wav", 2.0, text, "en", {"fr": "Le patient a de la fièvre."},
        (CharSpan(12, 17, "Disease"), CharSpan(22, 26, "Disease")), {"speaker": "P"})
    assert [text[e.start:e.end] for e in first.entities] == ["fever", "rash"]
    assert isinstance(first.duration, float)
    assert second.audio_filepath == Path("/abs/b.wav")
    assert second.lang is None
    assert second.translation == {"de": "y", "fr": "z"}
    assert second.extra == {"target_lang": "de"}
    with pytest.raises(ValueError, match="clash"):
        ManifestEntry(Path("a.wav"), 1.0, "x", extra={"text": "y"})


@pytest.mark.parametrize(("row", "message"), [
    ({"duration": 1.0, "text": "x"}, "missing required key 'audio_filepath'"),
    ({"audio_filepath": "a.wav", "text": "x"}, "missing required key 'duration'"),
    ({"audio_filepath": "a.wav", "duration": 1.0}, "missing required key 'text'"),
    ({"audio_filepath": "a.wav", "duration": "1.0", "text": "x"},
     "'duration' must be a number, not str"),
    ({"audio_filepath": "a.wav", "duration": True, "text": "x"}, "'duration' must be a number"),
    ({"audio_filepath": "a.wav", "duration": -1, "text": "x"}, "must not be negative"),
    ({"audio_filepath": "a.wav", "duration": 1, "text": 3}, "'text' must be a string, not int"),
    ({"audio_filepath": 7, "duration": 1, "text": "x"}, "'audio_filepath' must be a string"),
    ({"audio_filepath": "a.wav", "duration": 1, "text": "x", "lang": 1}, "'lang' must be"),
    ({"audio_filepath": "a.wav", "duration": 1, "text": "x", "translation": "y"},
     "no 'target_lang'"),
    ({"audio_filepath": "a.wav", "duration": 1, "text": "x", "translation": {"fr": 1}},
     "'translation' for 'fr' must be a string"),
    ({"audio_filepath": "a.wav", "duration": 1, "text": "x", "translation": ["y"]},
     "'translation' must be a string or an object"),
    ({"audio_filepath": "a.wav", "duration": 1, "text": "fever",
      "entities": [{"start": 0, "end": 6, "type": "Disease"}]},
     r"offsets 0:6 are outside the text .* in entity 1"),
    ({"audio_filepath": "a.wav", "duration": 1, "text": "fever",
      "entities": [{"start": 0, "end": 5, "type": "Disease"}, {"start": 3, "end": 3, "type": "D"}]},
     r"offsets 3:3 .* in entity 2"),
    ({"audio_filepath": "a.wav", "duration": 1, "text": "fever",
      "entities": [{"start": -1, "end": 2, "type": "Disease"}]}, "outside the text"),
    ({"audio_filepath": "a.wav", "duration": 1, "text": "fever",
      "entities": [{"start": 0, "end": 4, "type": "Disease", "text": "fever"}]},
     r"'text' is 'fever' but text\[0:4\] is 'feve'"),
    ({"audio_filepath": "a.wav", "duration": 1, "text": "fever",
      "entities": [{"start": 0, "end": 5}]}, "missing required key 'type' in entity 1"),
    ({"audio_filepath": "a.wav", "duration": 1, "text": "fever",
      "entities": [{"start": "0", "end": 5, "type": "D"}]}, "'start' must be an integer"),
    ({"audio_filepath": "a.wav", "duration": 1, "text": "fever",
      "entities": [{"start": 0, "end": 5, "type": "D", "cui": "C0015967"}]},
     "unexpected key"),
    ({"audio_filepath": "a.wav", "duration": 1, "text": "fever", "entities": {"start": 0}},
     "'entities' must be a list"),
    ({"audio_filepath": "a.wav", "duration": 1, "text": "fever", "entities": ["fever"]},
     "entity 1 must be an object"),
])
def test_malformed_manifest_line(tmp_path: Path, row: dict[str, object], message: str) -> None:
    good = {"audio_filepath": "ok.wav", "duration": 1.0, "text": "ok"}
    path = _manifest(tmp_path, good, row)
    _error(read_manifest, path, line=2, match=message)


def test_bad_json_line_is_named(tmp_path: Path) -> None:
    good = {"audio_filepath": "ok.wav", "duration": 1.0, "text": "ok"}
    path = _manifest(tmp_path, good, good, '{"audio_filepath": "a.wav", "duration": 1.0,', good)
    _error(read_manifest, path, line=3, match="not valid JSON")
    _error(read_manifest, _manifest(tmp_path, good, "", "[1, 2]"), line=3,
           match="expected a JSON object, found a list")


def test_invalid_utf8_is_named_by_line(tmp_path: Path) -> None:
    path = tmp_path / "manifest.jsonl"
    path.write_bytes(b'{"audio_filepath": "a.wav", "duration": 1, "text": "ok"}\n'
                     b'{"audio_filepath": "a.wav", "duration": 1, "text": "\xff"}\n')
    _error(read_manifest, path, line=2, match="not valid UTF-8")


def test_manifest_round_trip(tmp_path: Path) -> None:
    folder = tmp_path / "set"
    folder.mkdir()
    outside = (tmp_path / "elsewhere" / "c.flac").absolute()
    entries = [
        ManifestEntry(folder / "audio" / "a.wav", 1.25, "Fièvre\u2028et toux", "fr",
                      {"en": "Fever and cough"}, (CharSpan(0, 6, "Disease"),),
                      {"source": "x", "medical": True, "speakers": ["D", "P"]}),
        ManifestEntry(folder / ".." / "shared" / "b.wav", 0.0, "", None),
        ManifestEntry(outside, 3.0, "发烧", "zh"),
    ]
    path = folder / "manifest.jsonl"
    write_manifest(entries, path)
    written = [json.loads(line) for line in path.read_text(encoding="utf-8").split("\n")
               if line]
    assert [row["audio_filepath"] for row in written] == [
        "audio/a.wav", "../shared/b.wav", outside.as_posix()]
    assert written[0]["entities"] == [{"start": 0, "end": 6, "type": "Disease",
                                       "text": "Fièvre"}]
    assert "lang" not in written[1]
    assert read_manifest(path) == entries
    again = folder / "again.jsonl"
    write_manifest(read_manifest(path), again)
    assert again.read_bytes() == path.read_bytes()


def test_real_manifest_round_trip(tmp_path: Path) -> None:
    source = _require(SPEECH / "asterisk_prompts" / "manifest.jsonl")
    entries = read_manifest(source)
    copy = tmp_path / "manifest.jsonl"
    write_manifest(entries, copy)
    assert read_manifest(copy) == entries
    assert all(e.audio_filepath.is_file() for e in read_manifest(copy))


# --------------------------------------------------------------------------- CoNLL


def test_conll_reading_rules(tmp_path: Path) -> None:
    path = _write(tmp_path / "ner.tsv", [
        "-DOCSTART-\tO", "", "", "BRCA1\tNN\tB-Disease", "carriers\tNN\tI-Disease", "",
        "", "", "no\tO", "tab O", "Ataxia B-Disease", "x\tI-Chemical", ""])
    first, second = read_conll(path)
    assert first == TaggedSentence(("BRCA1", "carriers"), ("B-Disease", "I-Disease"))
    assert first.spans == (Span(0, 2, "Disease"),)
    assert second.tokens == ("no", "tab", "Ataxia", "x")
    assert second.spans == (Span(2, 3, "Disease"), Span(3, 4, "Chemical"))


def test_conll_without_final_blank_line(tmp_path: Path) -> None:
    path = tmp_path / "ner.tsv"
    path.write_text("a\tO\r\nb\tB-X", encoding="utf-8")
    assert read_conll(path) == [TaggedSentence(("a", "b"), ("O", "B-X"))]


@pytest.mark.parametrize(("line", "message"), [
    ("fever\tX-Disease", "bad IOB2 tag 'X-Disease'"),
    ("fever\tB-", "bad IOB2 tag 'B-'"),
    ("fever\tS-Disease", "bad IOB2 tag"),
    ("fever\tBDisease", "bad IOB2 tag"),
    ("fever", "expected 'token<TAB>tag'"),
    ("\tO", "token .* is empty"),
])
def test_malformed_conll(tmp_path: Path, line: str, message: str) -> None:
    path = _write(tmp_path / "ner.tsv", ["The\tO", "", "patient\tO", line])
    _error(read_conll, path, line=4, match=message)


def test_conll_round_trip(tmp_path: Path) -> None:
    sentences = [TaggedSentence(("Ménière", "'s", "disease"), ("B-Disease", "I-Disease",
                                                                "I-Disease")),
                 TaggedSentence(("ok",), ("O",))]
    path = tmp_path / "out.tsv"
    write_conll(sentences, path)
    assert path.read_text(encoding="utf-8") == (
        "Ménière\tB-Disease\n's\tI-Disease\ndisease\tI-Disease\n\nok\tO\n\n")
    assert read_conll(path) == sentences
    with pytest.raises(ValueError, match="cannot be written"):
        write_conll([TaggedSentence(("a\tb",), ("O",))], path)
    with pytest.raises(ValueError, match="bad IOB2 tag"):
        write_conll([TaggedSentence(("a",), ("E-X",))], path)
    with pytest.raises(ValueError, match="1 tokens but 2 tags"):
        TaggedSentence(("a",), ("O", "O"))


# --------------------------------------------------------------------------- TSV and JSONL MT


def test_parallel_tsv_errors(tmp_path: Path) -> None:
    no_ref = _write(tmp_path / "no_ref.tsv", ["id\tsrc_lang\ttgt_lang\tsrc", "1\ten\tde\tx"])
    _error(read_parallel_tsv, no_ref, line=1, match="missing column.* ref")
    short = _write(tmp_path / "short.tsv", ["id\tsrc_lang\ttgt_lang\tsrc\tref",
                                            "1\ten\tde\tfever\tFieber", "2\ten\tde\tcough"])
    _error(read_parallel_tsv, short, line=3, match="4 tab-separated field.*header has 5")
    duplicate = _write(tmp_path / "dup.tsv", ["id\tsrc_lang\ttgt_lang\tsrc\tref",
                                              "1\ten\tde\ta\tb", "1\ten\tde\tc\td"])
    _error(read_parallel_tsv, duplicate, line=3, match="already used on line 2")
    no_lang = _write(tmp_path / "no_lang.tsv", ["id\tsrc_lang\ttgt_lang\tsrc\tref",
                                                "1\t\tde\ta\tb"])
    _error(read_parallel_tsv, no_lang, line=2, match="'src_lang' column is empty")
    empty = tmp_path / "empty.tsv"
    empty.write_text("", encoding="utf-8")
    _error(read_parallel_tsv, empty, line=None, match="the file is empty")


def test_parallel_tsv_column_order_and_quotes(tmp_path: Path) -> None:
    path = _write(tmp_path / "p.tsv", ["ref\tsrc\tnote\tid\ttgt_lang\tsrc_lang",
                                       '"Fieber"\t"fever\t\t7\tde\ten', "\t\t\t8\tde\ten"])
    corpus = read_parallel_tsv(path)
    assert list(corpus) == [ParallelSegment("7", "en", "de", '"fever', '"Fieber"')]
    assert [(r.line, r.reason) for r in corpus.skipped] == [(3, "empty src and ref")]


def test_terminology_jsonl_errors(tmp_path: Path) -> None:
    good: dict[str, object] = {
        "id": "1", "src_lang": "de", "tgt_lang": "en", "src": "Fieber", "ref": "fever",
        "terms_proper": [{"de": "Fieber", "en": "fever"}]}
    path = _manifest(tmp_path, good)
    assert read_terminology_jsonl(path)[0].terms_proper == (TermPair("Fieber", "fever"),)
    assert read_terminology_jsonl(path)[0].terms_random == ()
    cases: list[tuple[dict[str, object], str]] = [
        ({**good, "id": "2", "terms_proper": [{"de": "Fieber"}]},
         r"missing required key 'en' in terms_proper\[0\]"),
        ({**good, "id": "2", "terms_random": [["Fieber", "fever"]]},
         r"terms_random\[0\] must be an object"),
        ({**good, "id": "2", "digits_mismatch": "no"}, "'digits_mismatch' must be true or false"),
        ({key: value for key, value in good.items() if key != "ref"} | {"id": "2"},
         "missing required key 'ref'"),
        (good, "id '1' was already used on line 1"),
    ]
    for row, message in cases:
        _error(read_terminology_jsonl, _manifest(tmp_path, good, row), line=2, match=message)
